"""The read façade: indicators (docs/interface.md §3) for a scope at an instant, as a series, or broken down.

Series are read like the boards read them (iw_indicator_series, through metrics.readers); what is not
published yet is computed from the readings (metrics.readers) with metrics.indicators. No SQL here.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

import numpy as np
import psycopg
from pydantic import BaseModel

from metrics.db import owns_transaction
from metrics.indicators import (
    Scope,
    SeriesMap,
    coverage_of,
    evaluate,
    is_increase,
    value_of,
)
from metrics.readers import distinct_series, fetch_indicator_inputs, read_published_series
from metrics.rollups import live_cutoff, rollups_keep, split_at
from metrics.timeutil import EPSILON, PLAN_TZ, Interval, aware, buckets, epoch, next_bucket, start_of_year
from reference.catalogue import INDICATORS, indicator
from reference.operators import ALL_OPERATOR, BUILTIN_OPERATORS
from reference.regions import PROVINCE, REGIONS, children, region_name, subtree, unknown_region_message


class IndicatorValue(BaseModel):
    indicator: str
    unit: str
    region: int
    operator: str | None
    entity: str | None
    as_of: datetime
    start: datetime | None
    value: float | None  # None = no data
    series_counted: int = 0
    series_stale: int = 0
    note: str | None = None
    #: "reported" or "stock" for an indicator with more than one basis (bs5g_new)
    basis: str | None = None
    #: How the value came about: the scope's own reported total, or a sum of how many of its parts
    coverage: str | None = None
    parts_reporting: int | None = None
    parts_total: int | None = None
    #: reported total − sum of its parts, where both exist
    reconciliation_gap: float | None = None


class SeriesPoint(BaseModel):
    ts: datetime
    value: float | None


class Contribution(BaseModel):
    key: str
    name: str
    value: float | None


def _check(indicator_id: str, region: int) -> None:
    indicator(indicator_id)  # raises with the known ids
    if region not in REGIONS:
        raise ValueError(unknown_region_message(str(region)))


# -- public queries ---------------------------------------------------------------------------------------


@owns_transaction
def indicator_value(
    conn: psycopg.Connection,
    indicator: str,
    *,
    region: int = PROVINCE,
    operator: str | None = None,
    entity: str | None = None,
    as_of: datetime,
    start: datetime | None = None,
) -> IndicatorValue:
    """The indicator in a scope at `as_of` (observations with ts <= as_of only).

    Gauges: sum of each series' latest value (stale series left out and counted); volumes, ratios of
    volumes and increases: over [start, as_of], start defaulting to 1 January (Asia/Shanghai) of as_of's year.
    """
    _check(indicator, region)
    operator = None if operator == ALL_OPERATOR else operator
    as_of = aware(as_of)
    start = aware(start) if start is not None else start_of_year(as_of)
    scope = Scope(region, operator, entity)
    until = as_of + EPSILON
    data = fetch_indicator_inputs(conn, indicator, scope, min(start, as_of), until)
    ev = evaluate(
        data,
        indicator,
        scope,
        np.array([epoch(start)]),
        np.array([epoch(until)]),
        increase_start=epoch(start) if is_increase(indicator) else None,
    )
    c = ev.combined
    value = value_of(float(c.value[0]))
    stale = int(c.stale[0])
    notes = []
    if value is None:
        notes.append("no data in this scope" + (" (only stale series)" if stale else ""))
    if stale:
        notes.append(f"{stale} series silent longer than the staleness limit were left out")
    cov = coverage_of(ev.total, region) if ev.total is not None and value is not None else None
    return IndicatorValue(
        indicator=indicator,
        unit=INDICATORS[indicator].unit,
        region=region,
        operator=operator,
        entity=entity,
        as_of=as_of,
        start=start,
        value=value,
        series_counted=int(c.counted[0]),
        series_stale=stale,
        note="; ".join(notes) or None,
        basis=ev.basis,
        coverage=cov.text if cov else None,
        parts_reporting=cov.parts_reporting if cov else None,
        parts_total=cov.parts_total if cov else None,
        reconciliation_gap=cov.gap if cov else None,
    )


@owns_transaction
def indicator_series(
    conn: psycopg.Connection,
    indicator: str,
    *,
    region: int = PROVINCE,
    operator: str | None = None,
    entity: str | None = None,
    start: datetime,
    end: datetime,
    interval: Interval,
) -> list[SeriesPoint]:
    """Bucketed series (bucket starts in Asia/Shanghai) over [start, end): gauges at each bucket's end,
    volumes and ratios within each bucket, increases since `start`. Answers from the rollups where they
    are current (1d / 1mo, and 1h for the sub-daily meter indicators at region level), computing the
    buckets pending changes can reach from the observations; otherwise from the observations."""
    _check(indicator, region)
    operator = None if operator == ALL_OPERATOR else operator
    start, end = aware(start), aware(end)
    starts = buckets(start, end, interval)
    if not starts:
        return []
    rolled = published_series(
        conn,
        indicator,
        region=region,
        operator=operator,
        entity=entity,
        starts=starts,
        interval=interval,
        increase_start=start,
    )
    if rolled is not None:
        return [SeriesPoint(ts=t, value=v) for t, v in zip(starts, rolled, strict=True)]
    values = compute_series(conn, indicator, Scope(region, operator, entity), starts, interval, increase_start=start)
    return [SeriesPoint(ts=t, value=v) for t, v in zip(starts, values, strict=True)]


def running_sum(values: list[float | None], base: float | None = None) -> list[float | None]:
    """Running sum of per-bucket increases from `base` (None while nothing has been counted yet): how a live
    tail continues iw_indicator_series' cumulated increases."""
    total = base
    out: list[float | None] = []
    for v in values:
        if v is not None:
            total = (total or 0.0) + v
        out.append(total)
    return out


@owns_transaction
def published_series(
    conn: psycopg.Connection,
    indicator_id: str,
    *,
    region: int,
    operator: str | None,
    entity: str | None,
    starts: list[datetime],
    interval: Interval,
    increase_start: datetime | None = None,
) -> list[float | None] | None:
    """The series as iw_indicator_series publishes it (rollups, then the pending tail); where the published tail
    is older than the newest readings, the buckets pending changes can reach are computed from the observations
    instead (as the next refresh_pending will publish them). None when nothing published can answer (not kept
    for this scope or interval, an increase counted from inside a bucket, every bucket within reach of a change
    not published yet)."""
    if not rollups_keep(indicator_id, region, operator, entity, interval):
        return None
    increase = INDICATORS[indicator_id].derivation == "increase"
    if increase and increase_start is not None and increase_start != starts[0]:
        return None
    end = next_bucket(starts[-1], interval)
    rows = read_published_series(
        conn, indicator_id, region=region, operator=operator, entity=entity, start=starts[0], end=end, interval=interval
    )
    values = [v for _, v, _, _ in rows]
    n = split_at(starts, interval, live_cutoff(conn, indicator_id, starts, interval))
    if all(pending and current for _, _, pending, current in rows[n:]):
        return values  # the published tail saw every change
    if n == 0:
        return None
    tail = compute_series(
        conn, indicator_id, Scope(region, operator, entity), starts[n:], interval, per_bucket=increase
    )
    return values[:n] + (running_sum(tail, values[n - 1]) if increase else tail)


def compute_series(
    conn: psycopg.Connection,
    indicator_id: str,
    scope: Scope,
    starts: list[datetime],
    interval: Interval,
    *,
    increase_start: datetime | None = None,
    data: SeriesMap | None = None,
    per_bucket: bool = False,
) -> list[float | None]:
    """The indicator per bucket, computed from the observations. Increases count from `increase_start`
    (default: the first bucket's start), or with `per_bucket` within each bucket (as indicator_rollup
    keeps them)."""
    ends = [*starts[1:], next_bucket(starts[-1], interval)]
    lo = np.array([epoch(t) for t in starts])
    hi = np.array([epoch(t) for t in ends])
    since_start = is_increase(indicator_id) and not per_bucket
    inc_start = increase_start or starts[0]
    if data is None:
        since = min(starts[0], inc_start) if since_start else starts[0]
        # the readings may be composed per bucket only where every window read starts at a bucket's start
        span: Interval = interval if not since_start or inc_start == starts[0] else "1h"
        data = fetch_indicator_inputs(conn, indicator_id, scope, since, ends[-1], span=span)
    ev = evaluate(
        data,
        indicator_id,
        scope,
        lo,
        hi,
        increase_start=epoch(inc_start) if since_start else None,
    )
    return [value_of(float(v)) for v in ev.combined.value]


@owns_transaction
def breakdown(
    conn: psycopg.Connection,
    indicator: str,
    *,
    region: int = PROVINCE,
    by: Literal["region", "operator", "entity"],
    as_of: datetime,
    start: datetime | None = None,
    operator: str | None = None,
) -> list[Contribution]:
    """The indicator for each city / operator / entity within a scope at `as_of`, largest first."""
    _check(indicator, region)
    operator = None if operator == ALL_OPERATOR else operator
    as_of = aware(as_of)
    start = aware(start) if start is not None else start_of_year(as_of)
    scope = Scope(region, operator)
    until = as_of + EPSILON
    data = fetch_indicator_inputs(conn, indicator, scope, min(start, as_of), until)
    return _breakdown_from(data, indicator, scope, by, start, until)


def _breakdown_from(
    data: SeriesMap, indicator_id: str, scope: Scope, by: str, start: datetime, until: datetime
) -> list[Contribution]:
    lo = np.array([epoch(start)])
    hi = np.array([epoch(until)])
    inc = epoch(start) if is_increase(indicator_id) else None
    parts: list[tuple[str, str, Scope]] = []
    if by == "region":
        below = children(scope.region) or (scope.region,)  # a province's cities, a city's counties
        parts = [(str(c), region_name(c), Scope(c, scope.operator, scope.entity)) for c in below]
    elif by == "operator":
        ops = sorted({k[2] for k in data if k[2] not in ("admin", "all")})
        parts = [(op, _operator_name(op), Scope(scope.region, op, scope.entity)) for op in ops]
    elif by == "entity":
        ents = sorted({(k[1], k[2], k[3]) for k in data if k[3]})
        parts = [(f"{r}/{op}/{e}", f"{e} ({op}, {region_name(r)})", Scope(r, op, e)) for r, op, e in ents]
    else:
        raise ValueError(f"breakdown by must be region, operator or entity, not {by!r}")
    out = []
    for key, name, sc in parts:
        v = evaluate(data, indicator_id, sc, lo, hi, increase_start=inc).combined.value[0]
        out.append(Contribution(key=key, name=name, value=value_of(float(v))))
    out.sort(key=lambda c: (c.value is None, -(c.value or 0.0)))
    return out


def _operator_name(op: str) -> str:
    names = BUILTIN_OPERATORS.get(op)
    return f"{names[0]} {names[1]}" if names else op


@owns_transaction
def entities(conn: psycopg.Connection, metric: str, *, region: int | None = None) -> list[tuple[int, str, str]]:
    """Distinct (region, operator, entity) that reported `metric` (in `region`'s cities if given).

    A skip scan over the primary key: one index probe per series, however many readings each has."""
    regions = subtree(region) if region is not None else None
    return [(r, o, e) for r, o, e in distinct_series(conn, metric) if regions is None or r in regions]


def to_plan_time(dt: datetime) -> datetime:
    return aware(dt).astimezone(PLAN_TZ)


def is_nan(x: float | None) -> bool:
    return x is None or math.isnan(x)
