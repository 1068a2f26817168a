"""Indicator rollups: table indicator_rollup, refreshed incrementally from rollup_dirty, read by series
queries and boards.

The ingest pipeline records (metric, UTC day) in rollup_dirty for every changed observation. A refresh
consumes those rows in its transaction, recomputes the affected 1d and 1mo buckets of every indicator
fed by the metric (with the same functions the Python queries use) for each city and the province, all
operators ('') and each operator, and each data centre for dc_pue. Increase indicators (bs5g_new,
users_5g_new) are stored as the increase within each bucket; a series query sums them from its start.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np
import psycopg

from metrics.db import owns_transaction
from metrics.indicators import Scope, SeriesMap, evaluate, input_metrics, is_gauge_based, lookback_s, staleness_s
from metrics.query import fetch_series
from metrics.timeutil import PLAN_TZ, Interval, buckets, epoch, floor_bucket, next_bucket, now, start_of_day
from reference.catalogue import INDICATORS, METRICS
from reference.regions import CITIES, PROVINCE

log = logging.getLogger(__name__)

_LOCK = 0x1F_2A_77  # advisory lock: one refresher at a time


def rolled_up_indicators() -> list[str]:
    """Indicators kept in indicator_rollup: all of them (increases as the increase within each bucket)."""
    return list(INDICATORS)


def _influence_days(indicator_id: str) -> int:
    """How many plan days after a changed day its buckets can change: a gauge reading counts until it
    goes stale; a counter reading also sets the base of the next reading."""
    days = 2
    for m in input_metrics(indicator_id):
        if METRICS[m].kind.value == "gauge":
            days = max(days, math.ceil(staleness_s(m) / 86400) + 2)
    return days


def day_ranges(days: list[date], influence: int, today: date) -> list[tuple[date, date]]:
    """Changed UTC days → plan-day ranges [first, last] (inclusive), each widened by the days a change
    influences (a UTC day overlaps two Asia/Shanghai days) and capped at today, merged."""
    return merge_spans([(d, min(today, d + timedelta(days=influence))) for d in days if d <= today])


def merge_spans(spans: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """Merge overlapping or adjacent inclusive day spans."""
    out: list[tuple[date, date]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@owns_transaction
def mark_all_dirty(conn: psycopg.Connection) -> int:
    """Queue every (metric, UTC day) that has observations, for a full rebuild; returns how many days."""
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO rollup_dirty (metric, day)"
            " SELECT DISTINCT metric, (ts AT TIME ZONE 'UTC')::date FROM observation ON CONFLICT DO NOTHING"
        )
        n = cur.rowcount
    return n


@owns_transaction
def refresh_rollups(conn: psycopg.Connection) -> int:
    """Consume rollup_dirty and recompute what it names; then extend gauge indicators' buckets up to today.
    Returns the number of rollup rows written. Safe to call concurrently (one refresher runs at a time)."""
    started = time.perf_counter()
    written = 0
    with conn.transaction():
        got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK,)).fetchone()
        if not got or not got[0]:
            return 0
        dirty = conn.execute("DELETE FROM rollup_dirty RETURNING metric, day").fetchall()
        by_metric: dict[str, list[date]] = defaultdict(list)
        for metric, day in dirty:
            by_metric[metric].append(day)
        today = now().astimezone(PLAN_TZ).date()
        for ind in rolled_up_indicators():
            days = sorted({d for m in input_metrics(ind) for d in by_metric.get(m, [])})
            ranges = day_ranges(days, _influence_days(ind), today) if days else []
            if is_gauge_based(ind):
                ranges = _with_catch_up(conn, ind, ranges, today)
            for first, last in ranges:
                written += _recompute(conn, ind, first, last)
    log.info(
        "rollups refreshed",
        extra={
            "event": "rollups.refresh",
            "dirty_days": len(dirty),
            "rows": written,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return written


def _with_catch_up(
    conn: psycopg.Connection, indicator_id: str, ranges: list[tuple[date, date]], today: date
) -> list[tuple[date, date]]:
    """Gauge levels carry forward: extend the days computed so far up to today (rollup_state)."""
    row = conn.execute("SELECT computed_through FROM rollup_state WHERE indicator = %s", (indicator_id,)).fetchone()
    through = row[0] if row else None
    spans = list(ranges)
    if through is not None and through < today and _may_still_count(conn, indicator_id, through):
        spans.append((through, today))
    elif through is not None and through < today:
        spans.append((today, today))  # nothing can count any more: only move the mark
    if spans and (through is not None or ranges):
        conn.execute(
            "INSERT INTO rollup_state (indicator, computed_through) VALUES (%s, %s)"
            " ON CONFLICT (indicator) DO UPDATE SET computed_through = GREATEST(rollup_state.computed_through,"
            " EXCLUDED.computed_through)",
            (indicator_id, max(b for _, b in spans)),
        )
    return merge_spans(spans)


def _may_still_count(conn: psycopg.Connection, indicator_id: str, day: date) -> bool:
    """Whether some reading of the indicator's gauges is recent enough to count on or after `day`."""
    metrics = list(input_metrics(indicator_id))
    row = conn.execute("SELECT max(last_ts) FROM feed_freshness WHERE metric = ANY(%s)", (metrics,)).fetchone()
    if not row or row[0] is None:
        return False
    limit = max(staleness_s(m) for m in metrics)
    return bool(row[0] + timedelta(seconds=limit) >= start_of_day(day))


def _recompute(conn: psycopg.Connection, indicator_id: str, first: date, last: date) -> int:
    """Recompute the 1d buckets of [first, last] and the 1mo buckets of the months they touch, one month
    at a time (memory stays bounded by a month of readings)."""
    written = 0
    lo_day, hi_day = start_of_day(first), start_of_day(last + timedelta(days=1))
    for month in buckets(lo_day, hi_day, "1mo"):
        month_end = next_bucket(month, "1mo")
        data = fetch_series(
            conn,
            input_metrics(indicator_id),
            [*CITIES, PROVINCE],
            month,
            month_end,
            prior_since=month - timedelta(seconds=lookback_s(indicator_id)),
        )
        days = buckets(max(lo_day, month), min(hi_day, month_end), "1d")
        if days:
            written += _replace(conn, indicator_id, "1d", days, _rows_for(data, indicator_id, "1d", days))
        written += _replace(conn, indicator_id, "1mo", [month], _rows_for(data, indicator_id, "1mo", [month]))
    return written


def _replace(
    conn: psycopg.Connection,
    indicator_id: str,
    interval: str,
    starts: list[datetime],
    rows: list[tuple[str, datetime, str, int, str, str, float]],
) -> int:
    conn.execute(
        "DELETE FROM indicator_rollup WHERE indicator = %s AND interval = %s AND bucket >= %s AND bucket <= %s",
        (indicator_id, interval, starts[0], starts[-1]),
    )
    if rows:
        with conn.cursor().copy(
            "COPY indicator_rollup (interval, bucket, indicator, region, operator, entity, value) FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row(r)
    return len(rows)


def scopes_for(data: SeriesMap, indicator_id: str) -> list[Scope]:
    """Every scope rolled up: each city and the province × all operators and each operator reporting there
    (admin reference series: all only) × each data centre for dc_pue."""
    admin = any(METRICS[m].admin_only for m in input_metrics(indicator_id))
    ops_by_region: dict[int, set[str]] = defaultdict(set)
    entities: set[tuple[int, str, str]] = set()
    for _, region, op, entity in data:
        ops_by_region[region].add(op)
        ops_by_region[PROVINCE].add(op)
        if entity:
            entities.add((region, op, entity))
    out = []
    for region in [*CITIES, PROVINCE]:
        out.append(Scope(region))
        if not admin:
            out.extend(Scope(region, op) for op in sorted(ops_by_region.get(region, ())))
    if indicator_id == "dc_pue":
        out.extend(Scope(r, op, e) for r, op, e in sorted(entities))
    return out


def _rows_for(
    data: SeriesMap, indicator_id: str, interval: Interval, starts: list[datetime]
) -> list[tuple[str, datetime, str, int, str, str, float]]:
    ends = [*starts[1:], next_bucket(starts[-1], interval)]
    lo = np.array([epoch(t) for t in starts])
    hi = np.array([epoch(t) for t in ends])
    rows: list[tuple[str, datetime, str, int, str, str, float]] = []
    for sc in scopes_for(data, indicator_id):
        values = evaluate(data, indicator_id, sc, lo, hi).combined.value
        for t, v in zip(starts, values, strict=True):
            if not math.isnan(v):
                rows.append((interval, t, indicator_id, sc.region, sc.operator or "", sc.entity or "", float(v)))
    return rows


@owns_transaction
def series_from_rollups(
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
    """The series from indicator_rollup, or None when the rollups cannot answer exactly (changes not yet
    refreshed, gauge buckets not carried up to the request, an increase counted from inside a bucket)."""
    if indicator_id not in INDICATORS:
        return None
    increase = INDICATORS[indicator_id].derivation == "increase"
    if increase and increase_start is not None and increase_start != starts[0]:
        return None
    metrics = input_metrics(indicator_id)
    if operator is not None and any(METRICS[m].admin_only for m in metrics):
        return None
    if entity is not None and (indicator_id != "dc_pue" or operator is None or region == PROVINCE):
        return None  # data-centre rollups are kept under the centre's own city and operator
    end = next_bucket(starts[-1], interval)
    back = timedelta(days=_influence_days(indicator_id) + 1)
    pending = conn.execute(
        "SELECT 1 FROM rollup_dirty WHERE metric = ANY(%s) AND day >= %s AND day <= %s LIMIT 1",
        (list(metrics), (starts[0] - back).date(), (end + timedelta(days=1)).date()),
    ).fetchone()
    if pending:
        return None
    if is_gauge_based(indicator_id):
        row = conn.execute("SELECT computed_through FROM rollup_state WHERE indicator = %s", (indicator_id,)).fetchone()
        through = row[0] if row else None
        needed = min(floor_bucket(starts[-1], "1d"), floor_bucket(now(), "1d")).date()
        if through is not None and through < needed:
            return None
    rows = conn.execute(
        "SELECT bucket, value FROM indicator_rollup WHERE indicator = %s AND interval = %s AND region = %s"
        " AND operator = %s AND entity = %s AND bucket >= %s AND bucket <= %s",
        (indicator_id, interval, region, operator or "", entity or "", starts[0], starts[-1]),
    ).fetchall()
    got = {b.timestamp(): v for b, v in rows}
    values = [got.get(t.timestamp()) for t in starts]
    if increase:  # increase since the first bucket's start: running sum of the buckets' increases
        total: float | None = None
        for i, v in enumerate(values):
            if v is not None:
                total = (total or 0.0) + v
            values[i] = total
    return values
