"""The verdict on a target's progress as small pure functions: status, early achievement, physical range of
a projection, staleness of the data and coverage of a breakdown (docs/metrics.md, *Progress*). No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from metrics.compute import Comparator, meets, shortfall, tolerance_band
from reference.catalogue import INDICATORS, METRICS

Status = Literal["achieved", "missed", "on_track", "at_risk", "off_track", "no_data"]


def physical_range(indicator_id: str) -> tuple[float, float]:
    """(lowest, highest) value the indicator can physically take, as the catalogue gives it (shares 0–100,
    flags 0–1, PUE ≥ 1, counts ≥ 0)."""
    ind = INDICATORS[indicator_id]
    return float(ind.physical_min), float(ind.physical_max)


def clamp_to_range(value: float | None, lo: float, hi: float) -> float | None:
    """`value` kept inside [lo, hi] (None stays None)."""
    if value is None:
        return None
    return min(hi, max(lo, value))


def achievable_early(indicator_id: str) -> bool:
    """Whether meeting the goal before the deadline already achieves it: true for increases, counts and
    milestones (what is built stays built); false for shares and ratios (a share met in September can fall
    back by December), which stay `on_track` with `met_now` until the deadline."""
    ind = INDICATORS[indicator_id]
    if ind.derivation == "ratio":
        return False
    return ind.unit not in ("%", "ratio", "GB/kWh")


def decide_status(
    *,
    actual: float | None,
    expected: float | None,
    projected: float | None,
    goal: float | None,
    baseline: float | None,
    comparator: Comparator,
    tolerance: float,
    deadline_passed: bool,
    early_achievement: bool,
    has_baseline: bool = True,
) -> Status:
    """The status of a target from its figures (docs/interface.md §8).

    `no_data` without an actual, a goal or a needed baseline (never missed or achieved on nothing). After
    the deadline: achieved or missed. Before it: achieved only when `early_achievement` and the actual
    meets the goal; otherwise the trend decides (a share met early is on_track while its projection
    holds). Without a projection (fewer than 3 points) the actual against expected alone: within the
    tolerance on_track, else at_risk (a trend is needed to say off_track).
    """
    if actual is None or goal is None or not has_baseline:
        return "no_data"
    met = meets(actual, goal, comparator)
    if deadline_passed:
        return "achieved" if met else "missed"
    if met and early_achievement:
        return "achieved"
    band = tolerance_band(goal, baseline, tolerance)
    lag = shortfall(actual, expected, comparator) if expected is not None and not met else 0.0
    if projected is None or meets(projected, goal, comparator):
        return "on_track" if lag <= band else "at_risk"
    miss = shortfall(projected, goal, comparator)
    return "at_risk" if miss <= band else "off_track"


#: Data of a metric is stale once older than this many times its cadence: a feed on the boards, the data a
#: progress rests on, a silent-feed alert by default (the factor of iw_feed_stale() in SQL).
STALE_FACTOR = 2


def staleness_limit_s(metric_id: str) -> float:
    """Data of a metric is stale once older than twice its cadence."""
    return float(STALE_FACTOR * METRICS[metric_id].cadence_s)


def is_stale(newest_by_metric: Mapping[str, float | None], at: float) -> bool:
    """Whether the data a progress rests on is stale at `at` (epoch seconds): some input metric's newest
    reading in scope is older than twice that metric's cadence. Metrics never reported in the scope are
    not counted (there is nothing to be stale; the status says `no_data`)."""
    return any(ts is not None and at - ts > staleness_limit_s(m) for m, ts in newest_by_metric.items())


def newest(newest_by_metric: Mapping[str, float | None]) -> float | None:
    """The newest reading among the metrics (None when none has one)."""
    known = [ts for ts in newest_by_metric.values() if ts is not None]
    return max(known) if known else None
