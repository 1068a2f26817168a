"""The expected trajectory is defined once (metrics.trajectory): what the board's iw_target_expected() reads
from the published points agrees with what progress computes, at many instants, for every shipped target
(linear, and with a monthly profile), on the 2023 scenario's data."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from collectors.csvfile import load_csv
from metrics import Target, evaluate_target, evaluate_targets, list_targets, load_targets, parse_as_of, store_progress
from metrics.targets import read_targets_file, upsert_target
from metrics.timeutil import EPSILON, PLAN_TZ, end_of_day, start_of_day
from metrics.trajectory import expected_at, known_baseline, known_goal
from simulators.generate import scenario_window
from simulators.run import backfill
from simulators.scenario import load_scenario
from simulators.sinks.csvfile import CsvSink
from tests.test_simulators_integration import TEST_VARIANT

AS_OF = parse_as_of("2023-09-30")
#: a profile shorter than the plan: the rest of the change falls due at the deadline's last instant
PROFILE = [0.05, 0.1, 0.2, 0.3, 0.5, 0.6, 0.65, 0.7]


def _instants(t: Target, rng: random.Random, n: int = 120) -> list[datetime]:
    """Random instants from a month before the start to a month after the deadline, and the edges."""
    t0, t1 = start_of_day(t.start), end_of_day(t.deadline)
    lo, hi = t0 - timedelta(days=30), t1 + timedelta(days=30)
    span = (hi - lo).total_seconds()
    out = [lo + timedelta(seconds=rng.uniform(0, span)) for _ in range(n)]
    noon = timedelta(hours=12)
    out += [t0 - EPSILON, t0, t0 + noon, t1 - noon, t1 - 2 * EPSILON, t1 - EPSILON, t1, t1 + EPSILON, hi]
    out += [start_of_day(t.start.replace(day=1) + timedelta(days=32 * k)).replace(day=1) for k in range(1, 10)]
    return out


def _sql_expected(conn: psycopg.Connection, target_id: str, instants: list[datetime]) -> list[float | None]:
    rows = conn.execute(
        "SELECT iw_target_expected(%s, at) FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS u(at, n) ORDER BY n",
        (target_id, instants),
    ).fetchall()
    return [r[0] for r in rows]


def _assert_agree(conn: psycopg.Connection, t: Target, baseline: float, goal: float, rng: random.Random) -> None:
    instants = _instants(t, rng)
    sql = _sql_expected(conn, t.id, instants)
    scale = max(abs(baseline), abs(goal), 1.0)
    for at, got in zip(instants, sql, strict=True):
        want = expected_at(t, baseline, goal, at)
        assert got is not None and got == pytest.approx(want, rel=1e-9, abs=1e-9 * scale), (t.id, at, got, want)


@pytest.fixture
def scenario_conn(conn: psycopg.Connection, tmp_path: Path) -> psycopg.Connection:
    sc = load_scenario("jiangxi-2023", TEST_VARIANT)
    window = scenario_window(sc)
    backfill(sc, CsvSink(sc, tmp_path / "csv"), window.start_us, window.end_us)
    for path in sorted((tmp_path / "csv").iterdir()):
        load_csv(conn, path, operator=None, operator_column_trusted=True)
    conn.commit()
    return conn


def test_the_board_and_progress_expect_the_same_value_at_every_instant_for_every_shipped_target(
    scenario_conn: psycopg.Connection,
) -> None:
    conn = scenario_conn
    load_targets(conn)
    shipped = {t.id: t for t in read_targets_file()}
    stored = {t.id: t for t in list_targets(conn, include_retired=True)}
    assert set(stored) == set(shipped)
    # loading publishes what is known without data: a fixed baseline (0 for an increase) and goal
    for t in stored.values():
        known = known_baseline(t)
        if known is None or known_goal(t, known) is None:
            assert _sql_expected(conn, t.id, [AS_OF]) == [None], t.id

    progresses = evaluate_targets(conn, AS_OF)
    store_progress(conn, progresses)  # what the scheduler's progress job does
    conn.commit()
    with_trajectory = [p for p in progresses if p.baseline is not None and p.goal is not None]
    assert len(with_trajectory) >= 12  # the scenario feeds 2023's plans; 2022's mostly have no data

    rng = random.Random(17)
    for p in progresses:
        t = stored[p.target_id]
        # the snapshot the board lists and the trajectory it draws say the same at the evaluation instant
        [at_as_of] = _sql_expected(conn, t.id, [p.as_of])
        if p.expected is None:
            assert at_as_of is None and (p.baseline is None or p.goal is None), t.id
            some = _instants(t, rng, 5)
            assert _sql_expected(conn, t.id, some) == [None] * len(some), t.id
            # without data: the same target with a baseline and a goal of its own
            baseline, goal = 1000.0, (p.goal if p.goal is not None else 1250.0)
            t = t.model_copy(update={"baseline": baseline, "goal": goal, "goal_indicator": None, "goal_relative": None})
            upsert_target(conn, t)
        else:
            assert p.baseline is not None and p.goal is not None
            assert at_as_of == pytest.approx(p.expected, rel=1e-9), t.id
            baseline, goal = p.baseline, p.goal
        _assert_agree(conn, t, baseline, goal, rng)
        # the same target along a monthly profile (one that stops short of 1 before the deadline)
        profiled = t.model_copy(
            update={
                "id": f"{t.id}-profiled",
                "profile": PROFILE,
                "baseline": baseline,
                "goal": goal,
                "goal_indicator": None,
                "goal_relative": None,
            }
        )
        upsert_target(conn, profiled)
        _assert_agree(conn, profiled, baseline, goal, rng)


def test_the_board_reads_what_progress_computes_at_any_as_of(scenario_conn: psycopg.Connection) -> None:
    """Not only through metrics.trajectory: progress evaluated at an instant expects what the SQL gives
    there (targets whose baseline and goal do not move with the data)."""
    conn = scenario_conn
    load_targets(conn)
    conn.commit()
    fixed = [t for t in list_targets(conn) if known_goal(t, known_baseline(t)) is not None and known_baseline(t) == 0]
    assert fixed
    profiled = fixed[0].model_copy(update={"id": "profiled", "profile": PROFILE})
    upsert_target(conn, profiled)
    for t in [*fixed, profiled]:
        instants = [
            start_of_day(t.start) + timedelta(days=40, hours=5),
            datetime(t.start.year, 6, 30, 23, 59, tzinfo=PLAN_TZ),
            start_of_day(t.start.replace(month=9)),
            end_of_day(t.deadline) - timedelta(hours=3),
        ]
        sql = _sql_expected(conn, t.id, instants)
        for at, got in zip(instants, sql, strict=True):
            p = evaluate_target(conn, t, at)
            assert p.expected is not None and got == pytest.approx(p.expected, rel=1e-9), (t.id, at)
