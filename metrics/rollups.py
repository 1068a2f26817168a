"""Publishing indicator values for the read path: table indicator_rollup, refreshed incrementally from
rollup_dirty, and the pending tail (indicator_pending, pending_state) that changes since the last refresh can
reach. Both are computed with metrics.indicators.evaluate and read only through iw_indicator_series
(migration 0130; metrics.readers, metrics.query). Depends on metrics.readers for readings, never on the façade.

The ingest pipeline records (metric, UTC day, hour) in rollup_dirty for every changed observation. A refresh
consumes those rows in its transaction, recomputes the affected 1d and 1mo buckets of every indicator
fed by the metric (with the same functions the Python queries use) for each city and the province, all
operators ('') and each operator, and each data centre for dc_pue; indicators fed only by sub-daily
metrics (the data-centre meters) also get 1h buckets, region-level scopes only. Increase indicators
(bs5g_new, users_5g_new) are stored as the increase within each bucket; a series query sums them from
its start. `refresh_pending` recomputes the buckets pending changes can reach (the tail) from the
observations and publishes them, so that a board reads the same numbers as the API; `live_cutoff` says from
which instant the rollups may not be current.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np
import psycopg
from psycopg import sql

from metrics.db import owns_transaction
from metrics.hours import keep_current
from metrics.indicators import Scope, SeriesMap, evaluate, input_metrics, is_gauge_based, lookback_s, staleness_s
from metrics.readers import fetch_series
from metrics.timeutil import EPSILON, PLAN_TZ, Interval, buckets, epoch, floor_bucket, next_bucket, now, start_of_day
from reference.catalogue import INDICATORS, METRICS, Kind
from reference.operators import ADMIN_WRITTEN
from reference.regions import CITIES, PROVINCE, REGIONS, ancestors

log = logging.getLogger(__name__)

_LOCK = 0x1F_2A_77  # advisory lock: one refresher at a time
_DAY_S = 86400
#: Beyond an input's cadence, how far before a pending change the reads start the recomputed tail.
_DIRTY_MARGIN_S = 3600


def rolled_up_indicators() -> list[str]:
    """Indicators kept in indicator_rollup: all of them (increases as the increase within each bucket)."""
    return list(INDICATORS)


def has_hourly_rollups(indicator_id: str) -> bool:
    """Whether the indicator also gets 1h buckets: every input metric is pushed more often than daily."""
    return all(METRICS[m].cadence_s < _DAY_S for m in input_metrics(indicator_id))


def hourly_indicators() -> list[str]:
    """Indicators with 1h rollups (region-level scopes only), from the catalogue's cadences."""
    return [i for i in rolled_up_indicators() if has_hourly_rollups(i)]


def _influence_days(indicator_id: str) -> int:
    """How many plan days after a changed day its buckets can change: a gauge reading counts until it
    goes stale; a counter reading also sets the base of the next reading."""
    days = 2
    for m in input_metrics(indicator_id):
        if METRICS[m].kind.value == "gauge" or is_gauge_based(indicator_id):
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
    """Queue every (metric, UTC day, hour) that has observations, for a full rebuild (the hourly summaries
    included); returns how many hours. Into rollup_work, which writers never touch: marking every hour in
    rollup_dirty would make a writer of a current hour wait for this long statement to commit."""
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO rollup_work (metric, day, hour) SELECT DISTINCT metric, (ts AT TIME ZONE 'UTC')::date,"
            " extract(hour FROM ts AT TIME ZONE 'UTC')::smallint FROM observation ON CONFLICT DO NOTHING"
        )
        n = cur.rowcount
    return n


@owns_transaction
def refresh_rollups(conn: psycopg.Connection) -> int:
    """Consume rollup_dirty and recompute what it names; then extend gauge indicators' buckets up to today.
    Returns the number of rollup rows written. Safe to call concurrently (one refresher runs at a time).

    Two transactions (migration 0210): `take_marks` moves the marks to rollup_work in milliseconds, so that
    writers never wait for the recompute; the recompute deletes them from rollup_work as it commits."""
    started = time.perf_counter()
    written = 0
    with conn.transaction():
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK,)).fetchone()  # held across both
    if not got or not got[0]:
        return 0
    try:
        if not take_marks(conn):
            return 0
        with conn.transaction():
            dirty = conn.execute("DELETE FROM rollup_work RETURNING metric, day, hour").fetchall()
            summaries = keep_current(conn, dirty)  # the hourly summaries first: the buckets below read them
            by_metric: dict[str, list[date]] = defaultdict(list)
            for metric, day, _ in dirty:
                by_metric[metric].append(day)
            today = now().astimezone(PLAN_TZ).date()
            for ind in rolled_up_indicators():
                days = sorted({d for m in input_metrics(ind) for d in by_metric.get(m, [])})
                ranges = day_ranges(days, _influence_days(ind), today) if days else []
                if is_gauge_based(ind):
                    ranges = _with_catch_up(conn, ind, ranges, today)
                for first, last in ranges:
                    written += _recompute(conn, ind, first, last)
            publish_catalogue(conn)
            _publish_pending(conn)  # what is still pending (changes that arrived during the refresh), or nothing
    finally:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
    log.info(
        "rollups refreshed",
        extra={
            "event": "rollups.refresh",
            "dirty_hours": len(dirty),
            "hour_summaries": summaries,
            "rows": written,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return written


#: How long `take_marks` waits for the writers that are adding marks (a long load holds them until it commits).
TAKE_MARKS_WAIT = "1s"


def take_marks(conn: psycopg.Connection) -> bool:
    """Move every mark from rollup_dirty to rollup_work in a short transaction. It first locks rollup_dirty
    against writers, which waits for those that already marked an hour to commit: the recompute then sees
    their readings. False (nothing moved; the next refresh tries again) when that wait passes TAKE_MARKS_WAIT."""
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{TAKE_MARKS_WAIT}'")
            conn.execute("LOCK TABLE rollup_dirty IN SHARE ROW EXCLUSIVE MODE")
            conn.execute(
                "WITH taken AS (DELETE FROM rollup_dirty RETURNING metric, day, hour)"
                " INSERT INTO rollup_work (metric, day, hour) SELECT * FROM taken ON CONFLICT DO NOTHING"
            )
    except psycopg.errors.LockNotAvailable:
        log.warning(
            "rollup refresh skipped: writers held rollup_dirty",
            extra={"event": "rollups.marks_busy", "waited": TAKE_MARKS_WAIT},
        )
        return False
    return True


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
    """Recompute the 1d buckets of [first, last] (and their 1h buckets for an hourly indicator) and the 1mo
    buckets of the months they touch, one month at a time (memory stays bounded by a month of readings)."""
    written = 0
    lo_day, hi_day = start_of_day(first), start_of_day(last + timedelta(days=1))
    for month in buckets(lo_day, hi_day, "1mo"):
        month_end = next_bucket(month, "1mo")
        data = fetch_series(
            conn,
            input_metrics(indicator_id),
            None,
            month,
            month_end,
            prior_since=month - timedelta(seconds=lookback_s(indicator_id)),
        )
        days = buckets(max(lo_day, month), min(hi_day, month_end), "1d")
        if days:
            written += _replace(conn, indicator_id, "1d", days, _rows_for(data, indicator_id, "1d", days))
            if has_hourly_rollups(indicator_id):
                hours = buckets(days[0], next_bucket(days[-1], "1d"), "1h")
                written += _replace(conn, indicator_id, "1h", hours, _rows_for(data, indicator_id, "1h", hours))
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
    return _copy_rows(conn, "indicator_rollup", rows)


def scopes_for(data: SeriesMap, indicator_id: str, *, with_entities: bool = True) -> list[Scope]:
    """Every scope rolled up: each region with data, its ancestors up to the nation, and the default
    province and its cities × all operators and each operator reporting there (admin reference series and
    `all` figures: all operators only), and (with `with_entities`) each data centre for dc_pue."""
    admin = any(METRICS[m].admin_only for m in input_metrics(indicator_id))
    ops_by_region: dict[int, set[str]] = defaultdict(set)
    entities: set[tuple[int, str, str]] = set()
    regions: set[int] = {*CITIES, PROVINCE}
    for _, region, op, entity in data:
        if region not in REGIONS:
            continue
        up = (region, *ancestors(region))
        regions.update(up)
        if op not in ADMIN_WRITTEN:
            for r in up:
                ops_by_region[r].add(op)
        if entity:
            entities.add((region, op, entity))
    out = []
    for region in sorted(regions):
        out.append(Scope(region))
        if not admin:
            out.extend(Scope(region, op) for op in sorted(ops_by_region.get(region, ())))
    if with_entities and indicator_id == "dc_pue":
        out.extend(Scope(r, op, e) for r, op, e in sorted(entities))
    return out


def _rows_for(
    data: SeriesMap, indicator_id: str, interval: Interval, starts: list[datetime]
) -> list[tuple[str, datetime, str, int, str, str, float]]:
    ends = [*starts[1:], next_bucket(starts[-1], interval)]
    lo = np.array([epoch(t) for t in starts])
    hi = np.array([epoch(t) for t in ends])
    rows: list[tuple[str, datetime, str, int, str, str, float]] = []
    for sc in scopes_for(data, indicator_id, with_entities=interval != "1h"):
        values = evaluate(data, indicator_id, sc, lo, hi).combined.value
        for t, v in zip(starts, values, strict=True):
            if not math.isnan(v):
                rows.append((interval, t, indicator_id, sc.region, sc.operator or "", sc.entity or "", float(v)))
    return rows


def change_reach(indicator_id: str) -> timedelta:
    """How far before a changed observation's ts the indicator's buckets can change: a gauge or counter
    reading alters only the buckets ending after it (levels from then on); a volume may stand for the
    interval it reports, up to its metric's cadence before it. Plus a margin."""
    volumes = [METRICS[m].cadence_s for m in input_metrics(indicator_id) if METRICS[m].kind == Kind.DELTA]
    return timedelta(seconds=max(volumes, default=0) + _DIRTY_MARGIN_S)


def stale_from(
    first_dirty: datetime | None,
    reach: timedelta = timedelta(0),
    gauge_through: date | None = None,
    gauge_needed: date | None = None,
) -> datetime | None:
    """The earliest instant from which the rollups may not be current, None when they are: `reach` before
    the earliest pending change (the start of its UTC hour), and, for gauge levels carried only through
    `gauge_through` while the request needs `gauge_needed`, the start of the next day."""
    cuts = []
    if first_dirty is not None:
        cuts.append(first_dirty - reach)
    if gauge_through is not None and gauge_needed is not None and gauge_through < gauge_needed:
        cuts.append(start_of_day(gauge_through + timedelta(days=1)))
    return min(cuts, default=None)


def split_at(starts: list[datetime], interval: Interval, cutoff: datetime | None) -> int:
    """How many leading buckets end at or before `cutoff` (all of them without one): those the rollups answer."""
    if cutoff is None:
        return len(starts)
    n = 0
    for t in starts:
        if next_bucket(t, interval) > cutoff:
            break
        n += 1
    return n


def live_cutoff(
    conn: psycopg.Connection, indicator_id: str, starts: list[datetime], interval: Interval
) -> datetime | None:
    """stale_from for a request (None: the rollups are current for it): the earliest pending change that can reach its buckets, and for a gauge-based
    indicator how far the levels are carried (rollup_state)."""
    end = next_bucket(starts[-1], interval)
    back = timedelta(days=_influence_days(indicator_id) + 1)
    row = conn.execute(
        "SELECT min(at) FROM rollup_pending WHERE metric = ANY(%s) AND day >= %s AND day <= %s",
        (list(input_metrics(indicator_id)), (starts[0] - back).date(), (end + timedelta(days=1)).date()),
    ).fetchone()
    first_dirty = row[0] if row else None
    reach = change_reach(indicator_id)
    if not is_gauge_based(indicator_id):
        return stale_from(first_dirty, reach)
    row = conn.execute("SELECT computed_through FROM rollup_state WHERE indicator = %s", (indicator_id,)).fetchone()
    through = row[0] if row else None
    needed = min(floor_bucket(starts[-1], "1d"), floor_bucket(now(), "1d")).date()
    return stale_from(first_dirty, reach, through, needed)


def rollups_keep(indicator_id: str, region: int, operator: str | None, entity: str | None, interval: Interval) -> bool:
    """Whether indicator_rollup (and the pending tail) keep the indicator for this scope and interval."""
    if indicator_id not in INDICATORS:
        return False
    if interval == "1h" and (entity is not None or not has_hourly_rollups(indicator_id)):
        return False  # hourly rollups: region-level scopes of sub-daily indicators only
    if operator is not None and any(METRICS[m].admin_only for m in input_metrics(indicator_id)):
        return False
    # data-centre rollups are kept under the centre's own city and operator
    return entity is None or (indicator_id == "dc_pue" and operator is not None and region != PROVINCE)


def publish_catalogue(conn: psycopg.Connection) -> None:
    """Keep iw_indicator and iw_metric equal to the catalogue: what iw_indicator_series needs to know of each
    indicator, and each metric's cadence for iw_feed_freshness."""
    rows = [(i, INDICATORS[i].derivation == "increase", list(input_metrics(i))) for i in rolled_up_indicators()]
    conn.execute("DELETE FROM iw_indicator WHERE NOT (id = ANY(%s))", ([r[0] for r in rows],))
    cadences = [(m.id, m.cadence_s) for m in METRICS.values()]
    conn.execute("DELETE FROM iw_metric WHERE NOT (id = ANY(%s))", ([m for m, _ in cadences],))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO iw_indicator (id, cumulative, inputs) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE"
            " SET cumulative = EXCLUDED.cumulative, inputs = EXCLUDED.inputs",
            rows,
        )
        cur.executemany(
            "INSERT INTO iw_metric (id, cadence_s) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE"
            " SET cadence_s = EXCLUDED.cadence_s WHERE iw_metric.cadence_s <> EXCLUDED.cadence_s",
            cadences,
        )


#: A pending tail longer than this is left to the next refresh (a backfill): series then read the rollups.
PENDING_MAX = timedelta(days=100)


def _pending_cutoff(conn: psycopg.Connection, indicator_id: str, today: date) -> datetime | None:
    """stale_from over every pending change of the indicator's inputs (and its gauge levels carried so far)."""
    row = conn.execute(
        "SELECT min(at) FROM rollup_pending WHERE metric = ANY(%s)",
        (list(input_metrics(indicator_id)),),
    ).fetchone()
    first_dirty = row[0] if row else None
    reach = change_reach(indicator_id)
    if not is_gauge_based(indicator_id):
        return stale_from(first_dirty, reach)
    row = conn.execute("SELECT computed_through FROM rollup_state WHERE indicator = %s", (indicator_id,)).fetchone()
    return stale_from(first_dirty, reach, row[0] if row else None, today)


def _pending_end(conn: psycopg.Connection, indicator_id: str, at: datetime) -> datetime | None:
    """Up to when a pending tail can have values: the newest reading of the inputs (plus the staleness limit
    for levels, which count until they go stale), never after `at`."""
    metrics = list(input_metrics(indicator_id))
    row = conn.execute("SELECT max(last_ts) FROM feed_freshness WHERE metric = ANY(%s)", (metrics,)).fetchone()
    if not row or row[0] is None:
        return None
    carry = max((staleness_s(m) for m in metrics if METRICS[m].kind == Kind.GAUGE), default=0.0)
    return min(at, row[0] + timedelta(seconds=carry)) + EPSILON


def _publish_pending(conn: psycopg.Connection) -> int:
    """Replace indicator_pending and pending_state with the tails of the current pending changes."""
    at = now()
    today = at.astimezone(PLAN_TZ).date()
    conn.execute("DELETE FROM indicator_pending")
    conn.execute("DELETE FROM pending_state")
    written = 0
    for ind in rolled_up_indicators():
        cutoff = _pending_cutoff(conn, ind, today)
        if cutoff is None:
            continue
        end = _pending_end(conn, ind, at)
        if end is not None and end - cutoff > PENDING_MAX:
            continue
        intervals: list[Interval] = ["1h", "1d", "1mo"] if has_hourly_rollups(ind) else ["1d", "1mo"]
        spans = {i: buckets(cutoff, end, i) if end is not None and end > cutoff else [] for i in intervals}
        firsts = [s[0] for s in spans.values() if s]
        if firsts:
            since = min(firsts)
            until = max(next_bucket(s[-1], i) for i, s in spans.items() if s)
            back = timedelta(seconds=lookback_s(ind))
            data = fetch_series(conn, input_metrics(ind), None, since, until, prior_since=since - back)
            for interval, starts in spans.items():
                if starts:
                    written += _write_pending(_rows_for(data, ind, interval, starts), conn)
        for interval in intervals:
            conn.execute(
                "INSERT INTO pending_state (indicator, interval, cutoff, computed_at) VALUES (%s, %s, %s, now())",
                (ind, interval, cutoff),
            )
    return written


def _copy_rows(
    conn: psycopg.Connection, table: str, rows: list[tuple[str, datetime, str, int, str, str, float]]
) -> int:
    """COPY bucket values into indicator_rollup or indicator_pending (the same columns)."""
    if rows:
        statement = sql.SQL("COPY {} (interval, bucket, indicator, region, operator, entity, value) FROM STDIN").format(
            sql.Identifier(table)
        )
        with conn.cursor().copy(statement) as copy:
            for r in rows:
                copy.write_row(r)
    return len(rows)


def _write_pending(rows: list[tuple[str, datetime, str, int, str, str, float]], conn: psycopg.Connection) -> int:
    return _copy_rows(conn, "indicator_pending", rows)


@owns_transaction
def refresh_pending(conn: psycopg.Connection) -> int:
    """Publish the pending tail: recompute, from the observations, the buckets changes not yet rolled up can
    reach (from each indicator's cutoff to its newest reading) for every scope the rollups keep. Returns the
    rows written; 0 when a refresh holds the lock (it publishes the tail itself when it ends)."""
    with conn.transaction():
        got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK,)).fetchone()
        if not got or not got[0]:
            return 0
        publish_catalogue(conn)
        return _publish_pending(conn)
