"""How each indicator (docs/interface.md §3) is computed from fetched series: selection of the series in a scope
and the combination rule. Pure: takes a mapping of series, returns per-bucket values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from infrawatch.settings import get_settings
from metrics.compute import (
    Combined,
    Series,
    bucket_increases,
    combine_gauges,
    combine_increases,
    combine_volumes,
    count_flagged,
    gauge_ratio,
    paired_ratio,
    prefer_reference,
)
from reference.catalogue import INDICATORS, METRICS, Kind, indicator
from reference.regions import PROVINCE, cities_of

#: (metric, region, operator, entity)
SeriesKey = tuple[str, int, str, str]
SeriesMap = Mapping[SeriesKey, Series]

_COUNTER_BASE_S = 86400.0  # how far before a window the base reading of a counter is looked for


def staleness_s(metric_id: str) -> float:
    """A gauge series silent longer than this stops counting: the configured limit, or twice the metric's
    cadence when that is longer (population and gigabit_city are yearly)."""
    return float(max(get_settings().gauge_staleness_s, 2 * METRICS[metric_id].cadence_s))


def input_metrics(indicator_id: str) -> tuple[str, ...]:
    return indicator(indicator_id).inputs


def is_gauge_based(indicator_id: str) -> bool:
    return all(METRICS[m].kind == Kind.GAUGE for m in input_metrics(indicator_id))


def is_increase(indicator_id: str) -> bool:
    return indicator(indicator_id).derivation == "increase"


def is_volume_ratio(indicator_id: str) -> bool:
    ind = indicator(indicator_id)
    return ind.derivation == "ratio" and not is_gauge_based(indicator_id)


def lookback_s(indicator_id: str) -> float:
    """How far before a window's start readings are needed (gauge levels, counter bases)."""
    out = 0.0
    for m in input_metrics(indicator_id):
        kind = METRICS[m].kind
        if kind == Kind.GAUGE:
            out = max(out, 2 * staleness_s(m))
        elif kind == Kind.COUNTER:
            out = max(out, _COUNTER_BASE_S)
    return out


def fetch_regions(indicator_id: str, region: int) -> list[int]:
    regions = list(cities_of(region))
    if region == PROVINCE and "population" in input_metrics(indicator_id):
        regions.append(PROVINCE)
    return regions


@dataclass(frozen=True, slots=True)
class Scope:
    region: int = PROVINCE
    operator: str | None = None
    entity: str | None = None

    def selects(self, key: SeriesKey, *, admin_metric: bool = False) -> bool:
        _, region, operator, entity = key
        if region not in cities_of(self.region) and region != self.region:
            return False
        if self.operator is not None and not admin_metric and operator != self.operator:
            return False
        return self.entity is None or entity == self.entity


def _pick(data: SeriesMap, metric_id: str, scope: Scope, region: int | None = None) -> list[Series]:
    admin = METRICS[metric_id].admin_only
    return [
        s
        for k, s in data.items()
        if k[0] == metric_id and scope.selects(k, admin_metric=admin) and (region is None or k[1] == region)
    ]


def _gauge(data: SeriesMap, metric_id: str, scope: Scope, at: np.ndarray) -> Combined:
    st = staleness_s(metric_id)
    if metric_id == "population" and scope.region == PROVINCE:
        prov = combine_gauges(_pick(data, metric_id, scope, PROVINCE), at, st)
        cities = combine_gauges(
            [
                s
                for k, s in data.items()
                if k[0] == metric_id and k[1] != PROVINCE and scope.selects(k, admin_metric=True)
            ],
            at,
            st,
        )
        return prefer_reference(prov, cities)
    return combine_gauges(_pick(data, metric_id, scope), at, st)


@dataclass(slots=True)
class Evaluation:
    """An indicator over buckets, with the sums behind a ratio (for shortfall attribution)."""

    combined: Combined
    numerator: np.ndarray | None = None
    denominator: np.ndarray | None = None


def evaluate(
    data: SeriesMap,
    indicator_id: str,
    scope: Scope,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    increase_start: float | None = None,
) -> Evaluation:
    """The indicator in `scope` for each bucket [lo, hi): gauges at hi, volumes within, increases since
    `increase_start` (default: each bucket's lo)."""
    ind = INDICATORS[indicator_id]
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    if ind.derivation == "metric":
        m = METRICS[indicator_id]
        if m.kind == Kind.GAUGE:
            return Evaluation(_gauge(data, indicator_id, scope, hi))
        return Evaluation(combine_volumes(_pick(data, indicator_id, scope), m.kind.value, lo, hi))
    if ind.derivation == "increase":
        (gauge,) = ind.inputs
        if increase_start is None:
            return Evaluation(bucket_increases(_pick(data, gauge, scope), lo, hi))
        return Evaluation(combine_increases(_pick(data, gauge, scope), increase_start, hi, staleness_s(gauge)))
    if ind.derivation == "count_cities":
        (flag,) = ind.inputs
        return Evaluation(count_flagged(_pick(data, flag, scope), hi, staleness_s(flag)))
    if ind.derivation == "ratio":
        num_id, den_id = ind.inputs
        if is_gauge_based(indicator_id):
            num = _gauge(data, num_id, scope, hi)
            den = _gauge(data, den_id, scope, hi)
            return Evaluation(gauge_ratio(num, den, ind.scale), num.value, den.value)
        pairs: dict[tuple[int, str, str], list[Series | None]] = {}
        for k, s in data.items():
            if k[0] not in (num_id, den_id) or not scope.selects(k):
                continue
            slot = pairs.setdefault((k[1], k[2], k[3]), [None, None])
            slot[0 if k[0] == num_id else 1] = s
        combined, n, d = paired_ratio(
            [(p[0], p[1]) for p in pairs.values()],
            METRICS[num_id].kind.value,
            METRICS[den_id].kind.value,
            lo,
            hi,
            ind.scale,
        )
        return Evaluation(combined, n, d)
    raise ValueError(f"indicator {indicator_id!r} has an unknown derivation {ind.derivation!r}")


def value_of(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)
