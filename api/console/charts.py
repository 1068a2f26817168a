"""Pure geometry of the console's inline SVG charts: a target's actual path, its expected trajectory
(metrics.trajectory's rule), the projection to the deadline and the goal, as SVG coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from metrics.compute import expected_value
from metrics.timeutil import PLAN_TZ, end_of_day, epoch, month_ends, start_of_day
from metrics.trajectory import fraction_rule

Point = tuple[datetime, float]


def expected_trajectory(
    *, start: date, deadline: date, baseline: float | None, goal: float | None, profile: list[float] | None = None
) -> list[Point]:
    """The expected path from the baseline at start to the goal at the deadline: a straight line, or the
    corners of a monthly profile. Empty when baseline or goal is unknown."""
    if baseline is None or goal is None:
        return []
    t0, t1 = start_of_day(start), end_of_day(deadline)
    instants = [t0]
    if profile:
        instants += [m for m in month_ends(start, len(profile)) if t0 < m < t1]
    instants.append(t1)
    due = fraction_rule(start, deadline, profile)
    return [(t, expected_value(baseline, goal, due(t))) for t in instants]


def compact_number(value: float) -> str:
    """An axis label: 1.2M, 340k, 41.5, 1.35."""
    a = abs(value)
    if a >= 1e8:
        return f"{value / 1e6:,.0f}M"
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e4:
        return f"{value / 1e3:.3g}k"
    if a >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Chart:
    """Everything a template needs to draw one chart; coordinates are SVG user units."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    actual: str = ""  # polyline points "x,y x,y"
    expected: str = ""
    projection: str = ""
    last_actual: tuple[float, float] | None = None
    goal_y: float | None = None
    now_x: float | None = None
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)  # x, label, text-anchor
    description: str = ""


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _value_range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo >= 0 and lo <= 0.5 * hi:
        lo = 0.0  # levels near zero read best from a zero baseline
    if hi == lo:
        hi, lo = hi + (abs(hi) * 0.1 or 1.0), lo - (abs(lo) * 0.1 if lo > 0 else 0.0)
    return lo, hi + (hi - lo) * 0.06


def trajectory_chart(
    *,
    start: datetime,
    deadline: datetime,
    as_of: datetime,
    actual: list[Point],
    expected: list[Point],
    projected: float | None,
    goal: float | None,
    width: int = 360,
    height: int = 150,
) -> Chart:
    """Actual (solid), expected (dashed) and the projection from the last actual point to the deadline."""
    left, top, right, bottom = 44.0, 8.0, width - 8.0, height - 20.0
    t0, t1 = epoch(start), epoch(deadline)
    span = max(t1 - t0, 1.0)
    actual = [(t, v) for t, v in actual if _finite(v) and t0 <= epoch(t) <= t1]
    expected = [(t, v) for t, v in expected if _finite(v)]
    proj: list[Point] = []
    if actual and _finite(projected) and epoch(actual[-1][0]) < t1:
        assert projected is not None
        proj = [actual[-1], (deadline, projected)]
    values = [v for _, v in actual + expected + proj] + ([goal] if goal is not None and _finite(goal) else [])
    chart_desc = _description(actual, expected, proj, goal)
    if not values:
        return Chart(width, height, left, top, right, bottom, description="no data to draw yet")
    lo, hi = _value_range(values)

    def x(t: datetime) -> float:
        return round(left + (epoch(t) - t0) / span * (right - left), 1)

    def y(v: float) -> float:
        return round(bottom - (v - lo) / (hi - lo) * (bottom - top), 1)

    def line(points: list[Point]) -> str:
        return " ".join(f"{x(t)},{y(v)}" for t, v in points)

    now = epoch(as_of)
    mid = lo + (hi - lo) / 2
    return Chart(
        width,
        height,
        left,
        top,
        right,
        bottom,
        actual=line(actual),
        expected=line(expected),
        projection=line(proj),
        last_actual=(x(actual[-1][0]), y(actual[-1][1])) if actual else None,
        goal_y=y(goal) if goal is not None and _finite(goal) else None,
        now_x=x(as_of) if t0 < now < t1 else None,
        y_ticks=[(y(v), compact_number(v)) for v in (lo, mid, hi)],
        x_ticks=[
            (left, start.astimezone(PLAN_TZ).strftime("%Y-%m-%d"), "start"),
            (right, deadline.astimezone(PLAN_TZ).strftime("%Y-%m-%d"), "end"),
        ],
        description=chart_desc,
    )


def _description(actual: list[Point], expected: list[Point], proj: list[Point], goal: float | None) -> str:
    parts = []
    if actual:
        parts.append(f"actual {compact_number(actual[-1][1])} on {actual[-1][0].astimezone(PLAN_TZ):%Y-%m-%d}")
    if expected:
        parts.append(f"expected path from {compact_number(expected[0][1])} to {compact_number(expected[-1][1])}")
    if proj:
        parts.append(f"projected {compact_number(proj[-1][1])} at the deadline")
    if goal is not None and _finite(goal):
        parts.append(f"goal {compact_number(goal)}")
    return "; ".join(parts) or "no data to draw yet"
