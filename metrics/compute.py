"""The arithmetic of indicators and progress, as pure functions over arrays (no I/O).

Times are float seconds since the epoch (UTC). A *series* is one (metric, region, operator, entity)
as two sorted arrays (ts, value). Buckets are half-open [lo, hi): a gauge's value for a bucket is its
level at hi (latest reading with ts < hi, unless older than the staleness limit); a delta's or
counter's volume for a bucket is the sum of what was recorded at ts in [lo, hi).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.planzone import plan_offset_s

Comparator = Literal[">=", ">", "<=", "<"]
Status = Literal["achieved", "missed", "on_track", "at_risk", "off_track", "no_data"]

FloatArray = np.ndarray


@dataclass(frozen=True, slots=True)
class Series:
    """One series' readings, sorted by time."""

    ts: FloatArray
    value: FloatArray

    @staticmethod
    def of(points: Iterable[tuple[float, float]]) -> Series:
        pts = sorted(points)
        return Series(np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts], dtype=float))

    def __len__(self) -> int:
        return len(self.ts)


# -- one series ---------------------------------------------------------------------------------------


def gauge_levels(s: Series, at: FloatArray, staleness_s: float) -> tuple[FloatArray, FloatArray]:
    """Level of a gauge just before each instant in `at` (reading ts < at).

    Returns (levels, stale): levels are NaN where there is no reading or the latest one is older than
    `staleness_s`; stale is True where a reading exists but is too old.
    """
    at = np.asarray(at, dtype=float)
    idx = np.searchsorted(s.ts, at, side="left") - 1
    has = idx >= 0
    safe = np.where(has, idx, 0)
    age = at - s.ts[safe] if len(s) else np.full(at.shape, np.inf)
    fresh = has & (age <= staleness_s)
    levels = np.where(fresh, s.value[safe] if len(s) else np.nan, np.nan)
    return levels.astype(float), (has & ~fresh)


def counter_increments(value: FloatArray, first: np.ndarray | None = None) -> FloatArray:
    """Volume recorded at each reading of a cumulative counter, as Prometheus' increase() counts it.

    The difference from the previous reading; after a reset (a reading lower than the previous one)
    the new reading itself; the first reading has no base and records 0. `first` marks the first reading of
    each series where several lie end to end (default: the array's first only).
    """
    value = np.asarray(value, dtype=float)
    if len(value) == 0:
        return value
    prev = np.concatenate(([np.nan], value[:-1]))
    inc = np.where(value >= prev, value - prev, value)
    if first is None:
        inc[0] = 0.0
    else:
        inc[first] = 0.0
    return inc


_PLAN_OFFSET_S = plan_offset_s()  # INFRAWATCH_TIMEZONE (one offset all year)


def plan_years(ts: FloatArray) -> np.ndarray:
    """Calendar year in Asia/Shanghai of each instant (float seconds since the epoch)."""
    local = (np.asarray(ts, dtype=float) + _PLAN_OFFSET_S).astype("int64").astype("datetime64[s]")
    return local.astype("datetime64[Y]").astype(np.int64) + 1970


def ytd_increments(ts: FloatArray, value: FloatArray, first: np.ndarray | None = None) -> FloatArray:
    """Volume recorded at each reading of a year-to-date series: the difference from the previous reading
    of the same year, and for the year's first reading the reading itself (it counts from zero). Summed
    up to t within a year this gives the latest figure of that year at or before t. `first` marks the first
    reading of each series where several lie end to end."""
    value = np.asarray(value, dtype=float)
    if len(value) == 0:
        return value
    years = plan_years(ts)
    prev = np.concatenate(([np.nan], value[:-1]))
    same_year = np.concatenate(([False], years[1:] == years[:-1]))
    if first is not None:
        same_year &= ~first
    return np.where(same_year, value - prev, value)


def window_sums(
    ts: FloatArray, amounts: FloatArray, lo: FloatArray, hi: FloatArray, *, ending: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Sum and count of `amounts` recorded at ts within each [lo, hi) — or, with `ending`, within (lo, hi]:
    an amount stamped at the end of the interval it covers belongs to the bucket it closes."""
    csum = np.concatenate(([0.0], np.cumsum(amounts, dtype=float)))
    if ending:
        a = np.searchsorted(ts, lo, side="right")
        b = np.searchsorted(ts, hi, side="right")
    else:
        a = np.searchsorted(ts, lo, side="left")
        b = np.searchsorted(ts, hi, side="left")
    return csum[b] - csum[a], (b - a).astype(float)


def volumes(s: Series, kind: str, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Volume of a delta, counter or ytd series in each bucket; (sums, reading counts).

    A delta is the volume of the interval ending at its ts, so it belongs to the bucket (lo, hi] it closes:
    a daily figure stamped 00:00 of 2 June is 1 June's. A counter's increment, and a year-to-date series'
    increment, is booked at the reading that ends it, within [lo, hi) (meters read continuously: a reading
    at 00:00 opens the day). One series of `volumes_of_many`.
    """
    sums, counts = volumes_of_many([s], kind, lo, hi)
    return sums[0], counts[0]


def volumes_of_many(
    series: Sequence[Series], kind: str, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The volumes of many series at once (see `volumes`): (sums, reading counts), each of shape (series,
    buckets). The series are laid end to end and every (series, bucket edge) is found by one
    search on integer keys (series number, place among the edges), so that the cost is not a call per series."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    shape = (len(series), len(lo))
    if not series or not len(lo):
        return np.zeros(shape), np.zeros(shape)
    lengths = np.array([len(s) for s in series])
    ts = np.concatenate([s.ts for s in series]) if lengths.sum() else np.zeros(0)
    value = np.concatenate([s.value for s in series]) if lengths.sum() else np.zeros(0)
    owner = np.repeat(np.arange(len(series)), lengths)
    first = np.concatenate(([True], owner[1:] != owner[:-1])) if len(ts) else np.zeros(0, dtype=bool)
    if kind == "counter":
        amounts = counter_increments(value, first)
    elif kind == "ytd":
        amounts = ytd_increments(ts, value, first)
    else:
        amounts = value
    # each point's place among the bucket edges: for a delta (ts in (lo, hi]) how many edges lie before it,
    # otherwise (ts in [lo, hi)) how many lie at or before it; "ts before edge e" is then "place <= e"
    edges = np.unique(np.concatenate([lo, hi]))
    place = np.searchsorted(edges, ts, side="left" if kind == "delta" else "right")
    stride = len(edges) + 1
    keys = owner * stride + place  # sorted: by series, then by time
    base = (np.arange(len(series)) * stride)[:, None]
    a = np.searchsorted(keys, base + np.searchsorted(edges, lo)[None, :], side="right")
    b = np.searchsorted(keys, base + np.searchsorted(edges, hi)[None, :], side="right")
    counts = b - a
    # each bucket's sum over its own slice (a running sum over every series would lose a small bucket's digits)
    slices = np.stack([a.ravel(), b.ravel()], axis=1).ravel()
    sums = np.add.reduceat(np.append(amounts, 0.0), slices)[::2].reshape(shape)
    return np.where(counts > 0, sums, 0.0), counts.astype(float)


def first_level_after(s: Series, lo: float, hi: float) -> float | None:
    """The first reading with lo <= ts < hi, or None."""
    i = int(np.searchsorted(s.ts, lo, side="left"))
    if i < len(s) and s.ts[i] < hi:
        return float(s.value[i])
    return None


# -- combining series ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Combined:
    """Per-bucket combination of several series."""

    value: FloatArray  # NaN = no data
    counted: FloatArray  # series counted per bucket
    stale: FloatArray  # series left out as stale per bucket


def combine_gauges(series: Iterable[Series], at: FloatArray, staleness_s: float) -> Combined:
    """Sum over series of each one's latest level before `at`; stale series stop counting."""
    at = np.asarray(at, dtype=float)
    total = np.zeros(at.shape)
    counted = np.zeros(at.shape)
    stale = np.zeros(at.shape)
    for s in series:
        levels, st = gauge_levels(s, at, staleness_s)
        ok = ~np.isnan(levels)
        total += np.where(ok, levels, 0.0)
        counted += ok
        stale += st
    return Combined(np.where(counted > 0, total, np.nan), counted, stale)


def combine_volumes(series: Iterable[Series], kind: str, lo: FloatArray, hi: FloatArray) -> Combined:
    """Sum of the volumes of delta or counter series within each [lo, hi)."""
    lo = np.asarray(lo, dtype=float)
    v, n = volumes_of_many(list(series), kind, lo, np.asarray(hi, dtype=float))
    total, counted = v.sum(axis=0), (n > 0).sum(axis=0).astype(float)
    return Combined(np.where(counted > 0, total, np.nan), counted, np.zeros(lo.shape))


def combine_increases(
    series: Iterable[Series], start: float, at: FloatArray, staleness_s: float, *, strict: bool = False
) -> Combined:
    """Increase of a gauge since `start`, summed over series: each series' latest level before each `at`
    minus its level at `start` (or, for a series that began after start, its first reading; with `strict`
    such a series has no increase: a reported total needs its own level at the start)."""
    at = np.asarray(at, dtype=float)
    total = np.zeros(at.shape)
    counted = np.zeros(at.shape)
    stale = np.zeros(at.shape)
    for s in series:
        base_arr, _ = gauge_levels(s, np.array([start]), staleness_s)
        base = float(base_arr[0])
        if math.isnan(base):
            first = first_level_after(s, start, math.inf)
            if first is None or strict:
                continue
            base = first
        levels, _ = gauge_levels(s, at, math.inf)  # a silent series keeps its last increase
        ok = ~np.isnan(levels) & (at > start)
        total += np.where(ok, levels - base, 0.0)
        counted += ok
        stale += ok & (at - _latest_ts(s, at) > staleness_s)
    return Combined(np.where(counted > 0, total, np.nan), counted, stale)


def bucket_increases(series: Iterable[Series], lo: FloatArray, hi: FloatArray, *, strict: bool = False) -> Combined:
    """Increase of a gauge within each bucket [lo, hi), summed over series: level before hi minus level
    before lo (a series without a level at lo counts from its first reading in the bucket, unless
    `strict`). Summed over consecutive buckets it telescopes to the increase since the first bucket's start."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    total = np.zeros(lo.shape)
    counted = np.zeros(lo.shape)
    for s in series:
        if not len(s):
            continue
        end, _ = gauge_levels(s, hi, math.inf)
        begin, _ = gauge_levels(s, lo, math.inf)
        i = np.searchsorted(s.ts, lo, side="left")
        first = s.value[np.minimum(i, len(s) - 1)]
        has_in = (i < len(s)) & (s.ts[np.minimum(i, len(s) - 1)] < hi)
        base = begin if strict else np.where(np.isnan(begin), np.where(has_in, first, np.nan), begin)
        ok = ~np.isnan(end) & ~np.isnan(base)
        total += np.where(ok, end - base, 0.0)
        counted += ok
    return Combined(np.where(counted > 0, total, np.nan), counted, np.zeros(lo.shape))


def _latest_ts(s: Series, at: FloatArray) -> FloatArray:
    idx = np.searchsorted(s.ts, at, side="left") - 1
    return np.where(idx >= 0, s.ts[np.maximum(idx, 0)], -np.inf)


def paired_ratio(
    pairs: Iterable[tuple[Series | None, Series | None]],
    kind_num: str,
    kind_den: str,
    lo: FloatArray,
    hi: FloatArray,
    scale: float = 1.0,
) -> tuple[Combined, FloatArray, FloatArray]:
    """Ratio of sums of volumes, scale · Σ num / Σ den, per bucket.

    Each pair is one reporting unit (an operator in a city, or a data centre); a unit counts in a bucket
    only when it reported both parts there with a positive denominator, so a unit that sent only its
    numerator cannot inflate the ratio. Returns (ratio, Σ num, Σ den).
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    both = [(n, d) for n, d in pairs if n is not None and d is not None]
    nv, nn = volumes_of_many([n for n, _ in both], kind_num, lo, hi)
    dv, dn = volumes_of_many([d for _, d in both], kind_den, lo, hi)
    ok = (nn > 0) & (dn > 0) & (dv > 0)
    num_total = np.where(ok, nv, 0.0).sum(axis=0)
    den_total = np.where(ok, dv, 0.0).sum(axis=0)
    counted = ok.sum(axis=0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(den_total > 0, scale * num_total / den_total, np.nan)
    return Combined(ratio, counted, np.zeros(lo.shape)), num_total, den_total


def gauge_ratio(num: Combined, den: Combined, scale: float = 1.0) -> Combined:
    """Ratio of two gauge sums (iot_per_capita)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((den.value > 0) & ~np.isnan(num.value), scale * num.value / den.value, np.nan)
    return Combined(ratio, num.counted, num.stale + den.stale)


def count_flagged(series: Iterable[Series], at: FloatArray, staleness_s: float) -> Combined:
    """How many series (cities) have a latest level of 1 before each instant (gigabit cities)."""
    at = np.asarray(at, dtype=float)
    n = np.zeros(at.shape)
    counted = np.zeros(at.shape)
    stale = np.zeros(at.shape)
    for s in series:
        levels, st = gauge_levels(s, at, staleness_s)
        ok = ~np.isnan(levels)
        n += np.where(ok & (levels >= 0.5), 1.0, 0.0)
        counted += ok
        stale += st
    return Combined(np.where(counted > 0, n, np.nan), counted, stale)


def prefer_reference(province: Combined, cities: Combined) -> Combined:
    """A province-level reference series (population) wins where it has a value; else the cities' sum."""
    have = ~np.isnan(province.value)
    return Combined(
        np.where(have, province.value, cities.value),
        np.where(have, province.counted, cities.counted),
        np.where(have, province.stale, cities.stale),
    )


@dataclass(slots=True)
class Total:
    """A scope's value per bucket: its own reported figure where there is one, else the sum of its parts
    (children regions, or operators), with the coverage of that sum and the gap between the two."""

    combined: Combined
    reported: FloatArray  # the scope's own figure (NaN = none)
    derived: FloatArray  # the sum of its parts (NaN = no part has a value)
    parts_reporting: FloatArray  # parts with a value, per bucket
    parts_total: int  # parts there are (e.g. the province's 11 cities)

    @property
    def gap(self) -> FloatArray:
        """reported − derived where both exist (NaN elsewhere)."""
        return self.reported - self.derived


def sum_parts(parts: Sequence[Combined], shape: tuple[int, ...]) -> tuple[Combined, FloatArray]:
    """Sum of parts per bucket (NaN where no part has a value) and how many parts have one."""
    total = np.zeros(shape)
    counted = np.zeros(shape)
    stale = np.zeros(shape)
    reporting = np.zeros(shape)
    for p in parts:
        ok = ~np.isnan(p.value)
        total += np.where(ok, p.value, 0.0)
        counted += np.where(ok, p.counted, 0.0)
        stale += p.stale
        reporting += ok
    return Combined(np.where(reporting > 0, total, np.nan), counted, stale), reporting


def reported_over_derived(
    own: Combined | None, parts: Sequence[Combined], parts_total: int, shape: tuple[int, ...]
) -> Total:
    """Reported totals beat derived sums: per bucket the scope's own figure where it exists, else the sum
    of its parts. Both are kept, so the gap and the coverage of the sum can be shown."""
    derived, reporting = sum_parts(parts, shape)
    if own is None:
        own = Combined(np.full(shape, np.nan), np.zeros(shape), np.zeros(shape))
    have = ~np.isnan(own.value)
    chosen = Combined(
        np.where(have, own.value, derived.value),
        np.where(have, own.counted, derived.counted),
        np.where(have, own.stale, derived.stale + own.stale),
    )
    return Total(chosen, own.value, derived.value, reporting, parts_total)


# -- targets and progress -----------------------------------------------------------------------------


def meets(value: float, goal: float, comparator: Comparator) -> bool:
    if comparator == ">=":
        return value >= goal
    if comparator == ">":
        return value > goal
    if comparator == "<=":
        return value <= goal
    return value < goal


def elapsed_fraction(start: float, deadline: float, at: float) -> float:
    """Share of [start, deadline] gone at `at`, clipped to [0, 1]."""
    if deadline <= start:
        return 1.0
    return min(1.0, max(0.0, (at - start) / (deadline - start)))


def profile_fraction(
    profile: Sequence[float], start: float, deadline: float, at: float, months: Sequence[float]
) -> float:
    """Cumulative fraction from a monthly profile: `months` are the end instants of the profile's months
    (len(profile) of them, the last at or before the deadline); linear within a month."""
    if at <= start:
        return 0.0
    prev_t, prev_f = start, 0.0
    for end_t, frac in zip(months, profile, strict=False):
        if at <= end_t:
            span = end_t - prev_t
            return prev_f + (frac - prev_f) * ((at - prev_t) / span if span > 0 else 1.0)
        prev_t, prev_f = end_t, frac
    return 1.0 if at >= deadline else prev_f


def expected_value(baseline: float, goal: float, fraction: float) -> float:
    """baseline + (goal − baseline) × fraction."""
    return baseline + (goal - baseline) * fraction


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Theil–Sen line (slope, intercept): median of pairwise slopes, median of residual intercepts.
    None with fewer than 3 points or no distinct x."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if len(x) < 3:
        return None
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    ok = dx != 0
    if not ok.any():
        return None
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok]))
    intercept = float(np.median(y - slope * x))
    return slope, intercept


def project(xs: Sequence[float], ys: Sequence[float], at: float) -> float | None:
    """Value at `at` on the Theil–Sen line through the points; None with fewer than 3 points."""
    line = theil_sen(xs, ys)
    if line is None:
        return None
    slope, intercept = line
    return slope * at + intercept


def tolerance_band(goal: float, baseline: float | None, tolerance: float) -> float:
    """Tolerance as a share of the required change |goal − baseline| (of |goal| without a baseline)."""
    change = abs(goal - baseline) if baseline is not None else abs(goal)
    if change == 0:
        change = abs(goal)
    return tolerance * change


def shortfall(value: float, target: float, comparator: Comparator) -> float:
    """How far `value` is on the wrong side of `target` (0 when it is on the right side)."""
    return max(0.0, target - value) if comparator in (">=", ">") else max(0.0, value - target)


def shortfall_shares(contributions: Mapping[str, float]) -> dict[str, float]:
    """Each key's share of the total positive shortfall (keys without a shortfall are left out)."""
    positive = {k: v for k, v in contributions.items() if v > 0}
    total = sum(positive.values())
    return {k: v / total for k, v in positive.items()} if total > 0 else {}


def additive_shortfalls(
    change_by: Mapping[str, float],
    weight_by: Mapping[str, float],
    required_change: float,
    comparator: Comparator,
) -> dict[str, float]:
    """Shortfall of each part of an additive indicator (gauge, increase): its fair share of the change
    required by now (in proportion to its weight, the level it started from; equal shares without one)
    minus the change it made."""
    keys = list(change_by)
    if not keys:
        return {}
    total = sum(max(0.0, weight_by.get(k, 0.0)) for k in keys)
    out: dict[str, float] = {}
    for k in keys:
        weight = (max(0.0, weight_by.get(k, 0.0)) / total) if total > 0 else 1.0 / len(keys)
        due = required_change * weight
        out[k] = (due - change_by[k]) if comparator in (">=", ">") else (change_by[k] - due)
    return out


def ratio_shortfalls(
    num_by: Mapping[str, float], den_by: Mapping[str, float], goal: float, scale: float, comparator: Comparator
) -> dict[str, float]:
    """Shortfall of each part of a ratio indicator in numerator units: for a `>=` goal the numerator it
    lacks to reach the goal rate on its own denominator (IPv6 GB missing); for `<=` the excess (kWh of
    facility energy above goal × IT energy)."""
    out: dict[str, float] = {}
    for k, den in den_by.items():
        if den <= 0:
            continue
        num = num_by.get(k, 0.0)
        target_num = goal / scale * den
        out[k] = (target_num - num) if comparator in (">=", ">") else (num - target_num)
    return out
