"""The expected trajectory of a target, defined once: the share of the change due at an instant (a line from
start to deadline, or a monthly cumulative profile), the baseline and goal known without data, and the
points of the trajectory published for SQL (table target_trajectory, read by iw_target_expected()).

Progress (metrics.progress), the console's chart and the plan-targets board all take the expected value
from here: the board through the published points, which are this module's values at every plan day's
start and at the deadline's last instants, so that the line between two neighbouring points is the
trajectory itself (both the linear and the profiled one bend only at a plan day's start; a profile that
ends short of 1 steps to the goal at the deadline's last instant).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg

from metrics import compute
from metrics.db import owns_transaction
from metrics.indicators import is_increase
from metrics.timeutil import EPSILON, aware, end_of_day, epoch, month_ends, start_of_day

if TYPE_CHECKING:
    from metrics.targets import Target

Point = tuple[datetime, float]


def fraction_rule(start: date, deadline: date, profile: Sequence[float] | None) -> Callable[[datetime], float]:
    """The share of the change due at an instant, in [0, 1]: after the deadline, the share at its end."""
    t0, t1 = start_of_day(start), end_of_day(deadline)
    e0, e1 = epoch(t0), epoch(t1)
    if profile:
        months = [epoch(m) for m in month_ends(start, len(profile))]
        shares = list(profile)
        return lambda at: compute.profile_fraction(shares, e0, e1, epoch(min(aware(at), t1)), months)
    return lambda at: compute.elapsed_fraction(e0, e1, epoch(min(aware(at), t1)))


def due_fraction(start: date, deadline: date, profile: Sequence[float] | None, at: datetime) -> float:
    """The share of the change from baseline to goal due at `at`."""
    return fraction_rule(start, deadline, profile)(at)


def expected_at(target: Target, baseline: float, goal: float, at: datetime) -> float:
    """The value the target expects at `at`: baseline + (goal − baseline) × the share due."""
    return compute.expected_value(baseline, goal, due_fraction(target.start, target.deadline, target.profile, at))


def known_baseline(target: Target) -> float | None:
    """The baseline known without data: the target's own, or 0 for an increase (counted from its start)."""
    if target.baseline is not None:
        return target.baseline
    return 0.0 if is_increase(target.indicator) else None


def known_goal(target: Target, baseline: float | None) -> float | None:
    """The goal known without reading another indicator: the target's number, or the relative change
    applied to the baseline."""
    if target.goal is not None:
        return target.goal
    if target.goal_relative is not None and baseline is not None:
        return baseline * (1.0 + target.goal_relative)
    return None


def trajectory_instants(start: date, deadline: date) -> list[datetime]:
    """Where the trajectory is published: every plan day's start from the start to the deadline, and the
    deadline's last two instants (a profile short of 1 steps to the goal at the last one)."""
    t1 = end_of_day(deadline)
    days = [start_of_day(start + timedelta(days=k)) for k in range((deadline - start).days + 1)]
    return [*days, t1 - EPSILON, t1]


def trajectory(target: Target, baseline: float, goal: float) -> list[Point]:
    """The published points: the expected value at each of `trajectory_instants`."""
    due = fraction_rule(target.start, target.deadline, target.profile)
    return [
        (at, compute.expected_value(baseline, goal, due(at)))
        for at in trajectory_instants(target.start, target.deadline)
    ]


@owns_transaction
def publish_trajectory(conn: psycopg.Connection, target: Target, baseline: float | None, goal: float | None) -> int:
    """Make the target's rows of target_trajectory its trajectory from `baseline` to `goal` (none when either
    is unknown: iw_target_expected() then gives NULL); returns the number of points. Unchanged points are
    not rewritten."""
    points = trajectory(target, baseline, goal) if baseline is not None and goal is not None else []
    ats = [at for at, _ in points]
    conn.execute(
        "DELETE FROM target_trajectory WHERE target_id = %s AND at NOT IN (SELECT unnest(%s::timestamptz[]))",
        (target.id, ats),
    )
    if points:
        conn.execute(
            "INSERT INTO target_trajectory (target_id, at, expected)"
            " SELECT %s, p.at, p.expected FROM unnest(%s::timestamptz[], %s::float8[]) AS p(at, expected)"
            " ON CONFLICT (target_id, at) DO UPDATE SET expected = EXCLUDED.expected"
            " WHERE target_trajectory.expected IS DISTINCT FROM EXCLUDED.expected",
            (target.id, ats, [v for _, v in points]),
        )
    return len(points)


@owns_transaction
def publish_known_trajectory(conn: psycopg.Connection, target: Target) -> int:
    """Publish the trajectory from what is known now: the target's own baseline and goal, else those of its
    latest stored progress (a baseline measured at the start, a goal read from another indicator)."""
    row = conn.execute("SELECT baseline, goal FROM target_progress WHERE target_id = %s", (target.id,)).fetchone()
    stored_baseline, stored_goal = row if row is not None else (None, None)
    baseline = known_baseline(target)
    if baseline is None:
        baseline = stored_baseline
    goal = known_goal(target, baseline)
    if goal is None:
        goal = stored_goal
    return publish_trajectory(conn, target, baseline, goal)
