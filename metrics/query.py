"""Indicators (docs/interface.md §3) for a scope at an instant, as a series, or broken down: fetch, then compute.

The SQL here only fetches readings; every combination rule lives in metrics.compute / metrics.indicators.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import psycopg
from pydantic import BaseModel

from metrics.compute import Series
from metrics.db import owns_transaction
from metrics.indicators import (
    Scope,
    SeriesKey,
    SeriesMap,
    coverage_of,
    evaluate,
    fetch_regions,
    input_metrics,
    is_increase,
    lookback_s,
    value_of,
)
from metrics.timeutil import EPSILON, PLAN_TZ, Interval, aware, buckets, epoch, next_bucket, start_of_year
from reference.catalogue import INDICATORS, METRICS, Kind, indicator
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


# -- fetching ---------------------------------------------------------------------------------------------


def _filters(
    metrics: tuple[str, ...] | list[str],
    regions: list[int] | None,
    operator: str | None,
    entity: str | None,
    alias: str = "",
) -> tuple[str, dict[str, object]]:
    """WHERE conditions for a scope (regions None = every region); the operator filter never hides the
    administration's series."""
    a = f"{alias}." if alias else ""
    params: dict[str, object] = {"metrics": list(metrics)}
    sql = f"{a}metric = ANY(%(metrics)s)"
    if regions is not None:
        sql += f" AND {a}region = ANY(%(regions)s)"
        params["regions"] = regions
    if operator is not None:
        sql += f" AND ({a}operator = %(operator)s OR {a}operator = 'admin')"
        params["operator"] = operator
    if entity is not None:
        sql += f" AND {a}entity = %(entity)s"
        params["entity"] = entity
    return sql, params


def _grouped(conn: psycopg.Connection, sql: str, params: dict[str, object]) -> dict[SeriesKey, Series]:
    """Run a query of (metric, region, operator, entity, t, value) rows; one Series per key, sorted by t.
    The server aggregates each series into two arrays (far fewer rows to decode than one per reading)."""
    agg = (
        "SELECT metric, region, operator, entity, array_agg(t ORDER BY t), array_agg(value ORDER BY t)"
        f" FROM ({sql}) r GROUP BY metric, region, operator, entity"
    )
    out: dict[SeriesKey, Series] = {}
    with conn.cursor(binary=True) as cur:
        cur.execute(agg, params)
        for metric, region, op, ent, ts, values in cur:
            out[(metric, region, op, ent)] = Series(np.asarray(ts, dtype=float), np.asarray(values, dtype=float))
    return out


_COLS = "metric, region, operator, entity, extract(epoch FROM ts)::float8 AS t, value"
#: Up to this window, the data-centre meters' bases are probed per meter that read in the window; a longer
#: one (a month's rollup refresh) takes them in one pass over the look-back.
_SHORT_WINDOW = timedelta(days=7)


def _edge_sql(
    metrics: tuple[str, ...] | list[str],
    where: str,
    params: dict[str, object],
    lo: str,
    hi: str,
    *,
    last: bool,
    tag: str,
) -> str:
    """SQL for each series' latest (last=True) or first reading with %(lo)s <= ts < %(hi)s.

    Region-level series (entity '') are found from feed_freshness, one index probe each (LATERAL …
    LIMIT 1), so a long look-back costs nothing; data-centre series (metrics with an entity) with a
    DISTINCT ON over the primary key (their look-back is short)."""
    order = "DESC" if last else "ASC"
    entity = params.get("entity")
    op = params.get("operator")
    fwhere, _ = _filters(
        metrics, [] if "regions" in params else None, op if isinstance(op, str) else None, None, alias="f"
    )
    parts = []
    if entity is None or entity == "":
        parts.append(
            "SELECT f.metric, f.region, f.operator, ''::text AS entity, extract(epoch FROM o.ts)::float8 AS t, o.value"
            f" FROM feed_freshness f CROSS JOIN LATERAL (SELECT ts, value FROM observation o"
            " WHERE o.metric = f.metric AND o.region = f.region AND o.operator = f.operator AND o.entity = ''"
            f" AND o.ts >= %({lo})s AND o.ts < %({hi})s ORDER BY o.ts {order} LIMIT 1) o"
            f" WHERE {fwhere}"
        )
    entity_metrics = [m for m in metrics if METRICS[m].entity_required]
    if entity_metrics:
        key = f"entity_metrics_{tag}"
        params[key] = entity_metrics
        parts.append(
            f"SELECT * FROM (SELECT DISTINCT ON (metric, region, operator, entity) {_COLS} FROM observation"
            f" WHERE {where} AND metric = ANY(%({key})s) AND entity <> '' AND ts >= %({lo})s AND ts < %({hi})s"
            f" ORDER BY metric, region, operator, entity, ts {order}) e{tag}"
        )
    return " UNION ALL ".join(parts)


def fetch_series(
    conn: psycopg.Connection,
    metrics: tuple[str, ...] | list[str],
    regions: list[int] | None,
    since: datetime,
    until: datetime,
    *,
    operator: str | None = None,
    entity: str | None = None,
    prior_since: datetime | None = None,
) -> dict[SeriesKey, Series]:
    """Readings with since <= ts < until of the given metrics and regions, grouped by series, plus (with
    `prior_since`) each series' latest reading in [prior_since, since): a gauge's level or a counter's
    base at `since`. The operator filter is not applied to the administration's reference series."""
    where, params = _filters(metrics, regions, operator, entity)
    params.update(since=since, until=until)
    # ts = until too: a delta stamped at a bucket's end is the volume of that bucket
    sql = f"SELECT {_COLS} FROM observation WHERE {where} AND ts >= %(since)s AND ts <= %(until)s"
    if prior_since is not None and prior_since < since:
        params["prior_since"] = prior_since
        counters = [m for m in metrics if METRICS[m].entity_required and METRICS[m].kind == Kind.COUNTER]
        short_window = until - since <= _SHORT_WINDOW
        if counters and short_window and len(counters) == sum(METRICS[m].entity_required for m in metrics):
            # Data-centre meters (counters) over a short window (a series' live tail, a breakdown): only the
            # meters that read in the window need a base (one without readings there adds nothing to any
            # bucket), found by one index probe each instead of sorting a day of every meter's readings.
            prior = _edge_sql(
                [m for m in metrics if m not in counters], where, params, "prior_since", "since", last=True, tag="p"
            )
            params["counters_p"] = counters
            bases = (
                "SELECT s.metric, s.region, s.operator, s.entity, extract(epoch FROM b.ts)::float8 AS t, b.value"
                " FROM (SELECT DISTINCT metric, region, operator, entity FROM win"
                " WHERE metric = ANY(%(counters_p)s) AND entity <> '') s"
                " CROSS JOIN LATERAL (SELECT ts, value FROM observation o WHERE o.metric = s.metric"
                " AND o.region = s.region AND o.operator = s.operator AND o.entity = s.entity"
                " AND o.ts >= %(prior_since)s AND o.ts < %(since)s ORDER BY o.ts DESC LIMIT 1) b"
            )
            rest = f" UNION ALL {prior}" if prior else ""
            # the window is read once: its rows, and the meters that read in it
            sql = f"WITH win AS MATERIALIZED ({sql}) SELECT * FROM win UNION ALL {bases}{rest}"
            return _grouped(conn, sql, params)
        prior = _edge_sql(metrics, where, params, "prior_since", "since", last=True, tag="p")
        if prior:
            sql = f"{sql} UNION ALL {prior}"
    return _grouped(conn, sql, params)  # sorted per series in Python, not by the server


def fetch_edges(
    conn: psycopg.Connection,
    metrics: tuple[str, ...] | list[str],
    regions: list[int],
    at: datetime,
    until: datetime,
    lookback: timedelta,
    *,
    operator: str | None = None,
) -> dict[SeriesKey, Series]:
    """Per series, the latest reading in [at − lookback, at) and the first in [at, until): enough for its
    level at `at` and, for a series that began later, its first reading (DISTINCT ON over the primary key)."""
    where, params = _filters(metrics, regions, operator, None)
    params.update(at=at, until=until, since=at - lookback)
    before = _edge_sql(metrics, where, params, "since", "at", last=True, tag="b")
    after = _edge_sql(metrics, where, params, "at", "until", last=False, tag="a")
    sql = f"{before} UNION ALL {after}"
    return _grouped(conn, sql, params)


def merge_series(*maps: SeriesMap) -> dict[SeriesKey, Series]:
    """Union of several fetches of the same series (readings at the same ts kept once)."""
    out: dict[SeriesKey, Series] = {}
    for m in maps:
        for k, s in m.items():
            if k not in out:
                out[k] = s
                continue
            ts = np.concatenate([out[k].ts, s.ts])
            val = np.concatenate([out[k].value, s.value])
            order = np.argsort(ts, kind="stable")
            ts, val = ts[order], val[order]
            keep = np.concatenate(([True], np.diff(ts) > 0))
            out[k] = Series(ts[keep], val[keep])
    return out


def fetch_indicator_inputs(
    conn: psycopg.Connection,
    indicator_id: str,
    scope: Scope,
    since: datetime,
    until: datetime,
) -> SeriesMap:
    """Every reading an indicator needs for a scope in [since, until], plus each series' reading before
    `since` far enough back to carry a level or a counter into the window."""
    back = timedelta(seconds=lookback_s(indicator_id))
    return fetch_series(
        conn,
        input_metrics(indicator_id),
        fetch_regions(indicator_id, scope.region),
        since,
        until,
        operator=scope.operator_id,
        entity=scope.entity,
        prior_since=since - back,
    )


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
    from metrics.rollups import series_from_rollups

    rolled = series_from_rollups(
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
        data = fetch_indicator_inputs(conn, indicator_id, scope, since, ends[-1])
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


_DISTINCT_SERIES = """
WITH RECURSIVE s AS (
    SELECT * FROM (SELECT region, operator, entity FROM observation WHERE metric = %(metric)s
                   ORDER BY region, operator, entity LIMIT 1) first
    UNION ALL
    SELECT n.* FROM s CROSS JOIN LATERAL (
        SELECT o.region, o.operator, o.entity FROM observation o
        WHERE o.metric = %(metric)s AND (o.region, o.operator, o.entity) > (s.region, s.operator, s.entity)
        ORDER BY o.region, o.operator, o.entity LIMIT 1) n
)
SELECT region, operator, entity FROM s
"""


@owns_transaction
def entities(conn: psycopg.Connection, metric: str, *, region: int | None = None) -> list[tuple[int, str, str]]:
    """Distinct (region, operator, entity) that reported `metric` (in `region`'s cities if given).

    A skip scan over the primary key: one index probe per series, however many readings each has."""
    regions = subtree(region) if region is not None else None
    rows = conn.execute(_DISTINCT_SERIES, {"metric": metric}).fetchall()
    return [(int(r), str(o), str(e)) for r, o, e in rows if regions is None or r in regions]


def to_plan_time(dt: datetime) -> datetime:
    return aware(dt).astimezone(PLAN_TZ)


def is_nan(x: float | None) -> bool:
    return x is None or math.isnan(x)
