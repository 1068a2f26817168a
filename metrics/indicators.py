"""How each indicator (docs/interface.md §3) is computed from fetched series: selection of the series in a scope
and the combination rule. Pure: takes a mapping of series, returns per-bucket values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from core.settings import get_settings
from metrics.compute import (
    Combined,
    Series,
    Total,
    bucket_increases,
    combine_gauges,
    combine_increases,
    combine_volumes,
    count_flagged,
    gauge_ratio,
    paired_ratio,
    reported_over_derived,
)
from metrics.verdict import STALE_FACTOR
from reference.catalogue import INDICATORS, METRICS, Kind, indicator
from reference.operators import ADMIN_OPERATOR, ADMIN_WRITTEN, ALL_OPERATOR
from reference.regions import PROVINCE, REGIONS, ancestors, children, is_city, subtree

#: (metric, region, operator, entity)
SeriesKey = tuple[str, int, str, str]
SeriesMap = Mapping[SeriesKey, Series]

_COUNTER_BASE_S = 86400.0  # how far before a window the base reading of a counter is looked for
_YTD_BASE_S = 366 * 86400.0  # how far back the previous year-to-date figure of the year may be


def staleness_s(metric_id: str) -> float:
    """A gauge series silent longer than this stops counting: the configured limit, or twice the metric's
    cadence when that is longer (population and gigabit_city are yearly)."""
    return float(max(get_settings().gauge_staleness_s, STALE_FACTOR * METRICS[metric_id].cadence_s))


def input_metrics(indicator_id: str) -> tuple[str, ...]:
    return indicator(indicator_id).inputs


def is_gauge_based(indicator_id: str) -> bool:
    """Levels at an instant: every input a gauge, or a register read as its level."""
    if indicator(indicator_id).derivation == "level":
        return True
    return all(METRICS[m].kind == Kind.GAUGE for m in input_metrics(indicator_id))


def is_increase(indicator_id: str) -> bool:
    return indicator(indicator_id).derivation == "increase"


def is_volume_ratio(indicator_id: str) -> bool:
    ind = indicator(indicator_id)
    return ind.derivation == "ratio" and not is_gauge_based(indicator_id)


def lookback_s(indicator_id: str) -> float:
    """How far before a window's start readings are needed (gauge levels, counter bases, the previous
    year-to-date figure of the year)."""
    out = 0.0
    level = indicator(indicator_id).derivation == "level"
    for m in input_metrics(indicator_id):
        kind = METRICS[m].kind
        if kind == Kind.GAUGE or level:
            out = max(out, 2 * staleness_s(m))
        elif kind == Kind.COUNTER:
            out = max(out, _COUNTER_BASE_S)
        elif kind == Kind.YTD:
            out = max(out, _YTD_BASE_S)
    return out


def fetch_regions(indicator_id: str, region: int) -> list[int]:
    """Every region whose figures can count for `region`: itself and all below it."""
    return sorted(subtree(region))


def _total_operator(metric_id: str) -> str:
    """The operator whose figure is a scope's reported total: `admin` for the administration's reference
    series, `all` for everything else."""
    return ADMIN_OPERATOR if METRICS[metric_id].admin_only else ALL_OPERATOR


@dataclass(frozen=True, slots=True)
class Scope:
    region: int = PROVINCE
    operator: str | None = None  # None (or "all") = all operators together
    entity: str | None = None

    def selects(self, key: SeriesKey, *, admin_metric: bool = False) -> bool:
        _, region, operator, entity = key
        if region not in subtree(self.region):
            return False
        if self.operator not in (None, ALL_OPERATOR) and not admin_metric and operator != self.operator:
            return False
        return self.entity is None or entity == self.entity

    @property
    def operator_id(self) -> str | None:
        """The operator selected, None for all operators together."""
        return None if self.operator in (None, ALL_OPERATOR) else self.operator


def _pick(data: SeriesMap, metric_id: str, scope: Scope, region: int | None = None) -> list[Series]:
    admin = METRICS[metric_id].admin_only
    return [
        s
        for k, s in data.items()
        if k[0] == metric_id and scope.selects(k, admin_metric=admin) and (region is None or k[1] == region)
    ]


Leaf = Callable[[list[Series]], Combined]


@dataclass(frozen=True, slots=True)
class Check:
    """A reported total beside the sum of its parts: where reconciliation gaps come from."""

    region: int
    operator: str | None  # None = all operators
    axis: str  # "regions" (sum of children) or "operators" (sum of operators)
    total: Total


class Resolver:
    """A metric's value for any (region, operator) node of a scope, reported totals first: a node's own
    figure where it has one, else the sum of its children (regions below, recursively), and for all
    operators together the `all` figure, else the sum of the operators. Pure over fetched series."""

    def __init__(
        self,
        data: SeriesMap,
        metric_id: str,
        scope: Scope,
        leaf: Leaf,
        shape: tuple[int, ...],
        total_leaf: Leaf | None = None,
    ) -> None:
        self.metric_id = metric_id
        self.leaf = leaf
        #: for a node that also has parts: an increase of its own figure needs its own level at the start
        self.total_leaf = total_leaf or leaf
        self.shape = shape
        self.total_op = _total_operator(metric_id)
        self.admin = METRICS[metric_id].admin_only
        self.record = False
        self.checks: list[Check] = []
        by_node: dict[tuple[int, str], list[Series]] = {}
        for k, s in data.items():
            if k[0] != metric_id or not scope.selects(k, admin_metric=self.admin):
                continue
            if self.admin and k[2] != ADMIN_OPERATOR:
                continue
            by_node.setdefault((k[1], k[2]), []).append(s)
        self.by_node = by_node
        self.operators = sorted({op for _, op in by_node if op not in ADMIN_WRITTEN})
        #: regions holding data (per operator label), with their ancestors: where recursion has anything to find
        self.below: dict[str, set[int]] = {}
        for region, op in by_node:
            bucket = self.below.setdefault(op, set())
            bucket.add(region)
            bucket.update(ancestors(region))
        self.any_below = set().union(*self.below.values()) if self.below else set()
        self._memo: dict[tuple[int, str | None], Total] = {}

    def _own(self, region: int, op: str, *, has_parts: bool = False) -> Combined | None:
        series = self.by_node.get((region, op))
        if not series:
            return None
        return self.total_leaf(series) if has_parts else self.leaf(series)

    def node(self, region: int, op: str | None) -> Total:
        """The value of `region` for operator `op` (None = all operators together)."""
        key = (region, op)
        if key not in self._memo:
            self._memo[key] = self._compute(region, op)
        return self._memo[key]

    def _compute(self, region: int, op: str | None) -> Total:
        kids = children(region)
        if op is not None and not self.admin:
            below = self.below.get(op, set())
            parts = [self.node(c, op) for c in kids if c in below]
            own = self._own(region, op, has_parts=bool(parts))
            t = reported_over_derived(own, [p.combined for p in parts], len(kids), self.shape)
            self._note(region, op, "regions", t)
            return t
        ops_here = [o for o in self.operators if (region, o) in self.by_node]
        by_regions = [self.node(c, None) for c in kids if c in self.any_below]
        has_ops = (
            bool(self.operators) and not self.admin and any(region in self.below.get(o, ()) for o in self.operators)
        )
        own = self._own(region, self.total_op, has_parts=bool(by_regions) or has_ops)
        if ops_here and not self.admin:
            by_ops = [self.node(region, o) for o in self.operators if region in self.below.get(o, set())]
            t = reported_over_derived(own, [p.combined for p in by_ops], len(self.operators), self.shape)
            if self.record and own is not None and by_regions:
                self._note(
                    region,
                    None,
                    "regions",
                    reported_over_derived(own, [p.combined for p in by_regions], len(kids), self.shape),
                )
            self._note(region, None, "operators", t)
            return t
        t = reported_over_derived(own, [p.combined for p in by_regions], len(kids), self.shape)
        self._note(region, None, "regions", t)
        if self.record and own is not None and self.operators and not self.admin:
            by_ops = [self.node(region, o) for o in self.operators if region in self.below.get(o, set())]
            if by_ops:
                self._note(
                    region,
                    None,
                    "operators",
                    reported_over_derived(own, [p.combined for p in by_ops], len(self.operators), self.shape),
                )
        return t

    def _note(self, region: int, op: str | None, axis: str, t: Total) -> None:
        if self.record and (~np.isnan(t.reported) & ~np.isnan(t.derived)).any():
            self.checks.append(Check(region, op, axis, t))


@dataclass(frozen=True, slots=True)
class Coverage:
    """How a scope's value came about (first bucket): its own reported total, or the sum of its parts."""

    reported: bool
    parts_reporting: int | None
    parts_total: int | None
    gap: float | None
    text: str


def coverage_of(total: Total, region: int, bucket: int = 0) -> Coverage | None:
    """The coverage of a value in words: "reported total" (with the gap to its parts' sum, where they
    have one) or "sum of 9 of 11 parts"."""
    reported = float(total.reported[bucket])
    derived = float(total.derived[bucket])
    n = int(total.parts_reporting[bucket])
    of = total.parts_total
    parts = _parts_word(region)
    if not math.isnan(reported):
        if math.isnan(derived):
            return Coverage(True, None, None, None, "reported total")
        gap = reported - derived
        return Coverage(
            True, n, of, gap, f"reported total; its parts sum to {derived:g} ({n} of {of} {parts}), gap {gap:g}"
        )
    if math.isnan(derived):
        return None
    return Coverage(False, n, of, None, f"sum of {n} of {of} {parts} reporting")


def _parts_word(region: int) -> str:
    kids = children(region)
    if not kids:
        return "parts"
    level = REGIONS[kids[0]].level
    return {"province": "provinces", "city": "cities", "county": "counties"}.get(level, "parts")


def resolve(
    data: SeriesMap, metric_id: str, scope: Scope, leaf: Leaf, shape: tuple[int, ...], total_leaf: Leaf | None = None
) -> Total:
    """A metric's value in a scope, reported totals first (see Resolver)."""
    return Resolver(data, metric_id, scope, leaf, shape, total_leaf).node(scope.region, scope.operator_id)


def gauge_leaf(metric_id: str, at: np.ndarray) -> Leaf:
    st = staleness_s(metric_id)
    return lambda series: combine_gauges(series, at, st)


def volume_leaf(metric_id: str, lo: np.ndarray, hi: np.ndarray) -> Leaf:
    kind = METRICS[metric_id].kind.value
    return lambda series: combine_volumes(series, kind, lo, hi)


def increase_leaf(
    metric_id: str, lo: np.ndarray, hi: np.ndarray, increase_start: float | None, *, strict: bool = False
) -> Leaf:
    """Increase of a gauge (within each bucket, or since `increase_start`), the volume of a flow; `strict`:
    a gauge series without its own level at the start has no increase (for reported totals)."""
    if METRICS[metric_id].kind != Kind.GAUGE:
        if increase_start is None:
            return volume_leaf(metric_id, lo, hi)
        return volume_leaf(metric_id, np.full(lo.shape, increase_start), hi)
    if increase_start is None:
        return lambda series: bucket_increases(series, lo, hi, strict=strict)
    st = staleness_s(metric_id)
    start = increase_start
    return lambda series: combine_increases(series, start, hi, st, strict=strict)


def metric_total(
    data: SeriesMap,
    metric_id: str,
    scope: Scope,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    increase: bool = False,
    increase_start: float | None = None,
) -> Total:
    """A pushed metric in a scope per bucket, reported totals first: gauges at hi, volumes within [lo, hi),
    with `increase` a gauge's increase (within each bucket, or since `increase_start`)."""
    shape = lo.shape
    total_leaf = None
    if increase:
        leaf = increase_leaf(metric_id, lo, hi, increase_start)
        total_leaf = increase_leaf(metric_id, lo, hi, increase_start, strict=True)
    elif METRICS[metric_id].kind == Kind.GAUGE:
        leaf = gauge_leaf(metric_id, hi)
    else:
        leaf = volume_leaf(metric_id, lo, hi)
    return resolve(data, metric_id, scope, leaf, shape, total_leaf)


@dataclass(slots=True)
class Evaluation:
    """An indicator over buckets, with the sums behind a ratio (for shortfall attribution), the basis it
    used where it has more than one, and the coverage of a derived value."""

    combined: Combined
    numerator: np.ndarray | None = None
    denominator: np.ndarray | None = None
    basis: str | None = None
    total: Total | None = None


#: Basis names of an increase with a reported flow beside the stock.
BASIS_REPORTED = "reported"
BASIS_STOCK = "stock"


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
    `increase_start` (default: each bucket's lo). Every additive figure takes a scope's reported total
    over the sum of its parts."""
    ind = INDICATORS[indicator_id]
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    if ind.derivation == "metric":
        t = metric_total(data, indicator_id, scope, lo, hi)
        return Evaluation(t.combined, total=t)
    if ind.derivation == "increase":
        if ind.flow is not None:
            flow = metric_total(data, ind.flow, scope, lo, hi, increase=True, increase_start=increase_start)
            if (~np.isnan(flow.combined.value)).any():
                c = flow.combined
                value = np.where(np.isnan(c.value), 0.0, c.value)
                return Evaluation(Combined(value, c.counted, c.stale), basis=BASIS_REPORTED, total=flow)
        stock = ind.inputs[0]
        t = metric_total(data, stock, scope, lo, hi, increase=True, increase_start=increase_start)
        return Evaluation(t.combined, basis=BASIS_STOCK if ind.flow is not None else None, total=t)
    if ind.derivation == "prefer":
        first, fallback = ind.inputs
        t = metric_total(data, first, scope, lo, hi)
        if (~np.isnan(t.combined.value)).any():
            return Evaluation(t.combined, basis=BASIS_REPORTED, total=t)
        t = metric_total(data, fallback, scope, lo, hi)
        return Evaluation(t.combined, basis=BASIS_STOCK, total=t)
    if ind.derivation == "level":
        (register,) = ind.inputs
        t = resolve(data, register, scope, gauge_leaf(register, hi), lo.shape)
        return Evaluation(t.combined, total=t)
    if ind.derivation == "count_cities":
        (flag,) = ind.inputs
        cities = [s for k, s in data.items() if k[0] == flag and scope.selects(k, admin_metric=True) and is_city(k[1])]
        return Evaluation(count_flagged(cities, hi, staleness_s(flag)))
    if ind.derivation == "ratio":
        num_id, den_id = ind.inputs
        if is_gauge_based(indicator_id):
            num = metric_total(data, num_id, scope, lo, hi).combined
            den = metric_total(data, den_id, scope, lo, hi).combined
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
