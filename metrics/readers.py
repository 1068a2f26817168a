"""SQL readers of the metrics layer: readings of the observations (fetch, no arithmetic) and the published
series (iw_indicator_series over indicator_rollup and indicator_pending). Readings are read series by
series: the series in scope from `series`, then their points (observation_point) on its primary key
(series_id, ts). Every combination rule lives in
metrics.compute / metrics.indicators; nothing here imports the façade (metrics.query) or the rollups.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import psycopg

from core.planzone import plan_offset_s
from metrics.compute import Series
from metrics.hours import summarized_metrics, whole_hours
from metrics.indicators import Scope, SeriesKey, SeriesMap, fetch_regions, input_metrics, lookback_s
from metrics.timeutil import Interval, epoch, floor_bucket
from reference.catalogue import METRICS, Kind


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
    return _series_of(conn, agg, params)


def _grouped_by_id(conn: psycopg.Connection, sql: str, params: dict[str, object]) -> dict[SeriesKey, Series]:
    """_grouped for a query of (sid, t, value) rows: aggregated by series id (an integer sort, not four
    columns of text), the series' names joined once per series."""
    agg = (
        "SELECT s.metric, s.region, s.operator, s.entity, g.ts, g.vs FROM (SELECT sid,"
        f" array_agg(t ORDER BY t) AS ts, array_agg(value ORDER BY t) AS vs FROM ({sql}) r GROUP BY sid) g"
        " JOIN series s ON s.id = g.sid"
    )
    return _series_of(conn, agg, params)


def _series_of(conn: psycopg.Connection, sql: str, params: dict[str, object]) -> dict[SeriesKey, Series]:
    """Rows of (metric, region, operator, entity, ts[], value[]) as Series."""
    out: dict[SeriesKey, Series] = {}
    with conn.cursor(binary=True) as cur:
        cur.execute(sql, params)
        for metric, region, op, ent, ts, values in cur:
            out[(metric, region, op, ent)] = Series(np.asarray(ts, dtype=float), np.asarray(values, dtype=float))
    return out


def _readings_sql(where: str, lo: str, hi: str) -> str:
    """SQL for the readings with %(lo)s <= ts <= %(hi)s of the series `where` selects (their columns, unqualified):
    the series from `series`, then each one's points read on the primary key (series_id, ts). The points'
    subquery is kept apart from the join (OFFSET 0): joined plainly, the planner takes every series to hold
    the average number of readings and scans whole partitions of meters for a few daily series."""
    return (
        "SELECT s.metric, s.region, s.operator, s.entity, extract(epoch FROM o.ts)::float8 AS t, o.value"
        " FROM series s CROSS JOIN LATERAL (SELECT p.ts, p.value FROM observation_point p"
        f" WHERE p.series_id = s.id AND p.ts >= %({lo})s AND p.ts <= %({hi})s OFFSET 0) o WHERE {where}"
    )


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
    by_id: bool = False,
) -> str:
    """SQL for each series' latest (last=True) or first reading with %(lo)s <= ts < %(hi)s: the series in
    scope (region-level ones, entity '', of every metric; data-centre ones of the metrics with an entity)
    from `series`, each probed once on the primary key (series_id, ts) (LATERAL … LIMIT 1), so that a long
    look-back costs nothing. `where` filters the series' columns, unqualified; `by_id` names each row's series
    by its id (sid) instead of its four columns."""
    order = "DESC" if last else "ASC"
    entity = params.get("entity")
    kinds = []
    if entity is None or entity == "":
        kinds.append("s.entity = ''")
    entity_metrics = [m for m in metrics if METRICS[m].entity_required]
    if entity_metrics:
        key = f"entity_metrics_{tag}"
        params[key] = entity_metrics
        kinds.append(f"(s.metric = ANY(%({key})s) AND s.entity <> '')")
    if not kinds:
        return ""
    keys = "s.id AS sid" if by_id else "s.metric, s.region, s.operator, s.entity"
    return (
        f"SELECT {keys}, extract(epoch FROM e.ts)::float8 AS t, e.value"
        " FROM series s CROSS JOIN LATERAL (SELECT o.ts, o.value FROM observation_point o"
        f" WHERE o.series_id = s.id AND o.ts >= %({lo})s AND o.ts < %({hi})s ORDER BY o.ts {order} LIMIT 1) e"
        f" WHERE {where} AND ({' OR '.join(kinds)})"
    )


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
    summaries: bool = True,
    span: Interval = "1h",
) -> dict[SeriesKey, Series]:
    """Readings with since <= ts < until of the given metrics and regions, grouped by series, plus (with
    `prior_since`) each series' latest reading in [prior_since, since): a gauge's level or a counter's
    base at `since`. The operator filter is not applied to the administration's reference series.

    Over whole hours of metrics with hourly summaries (and `summaries`), an hour is read from its summary
    wherever it is current (_fetch_hours): the same values for every bucket of `span` (hours, plan days or
    months; longer buckets made of whole ones too)."""
    if summaries and whole_hours(since, until) and set(metrics) <= _summaries_built(conn, metrics):
        return _fetch_hours(
            conn, metrics, regions, since, until, operator=operator, entity=entity, prior_since=prior_since, span=span
        )
    where, params = _filters(metrics, regions, operator, entity)
    params.update(since=since, until=until)
    # ts = until too: a delta stamped at a bucket's end is the volume of that bucket
    sql = _readings_sql(where, "since", "until")
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
                " WHERE metric = ANY(%(counters_p)s) AND entity <> '') w"
                " JOIN series s USING (metric, region, operator, entity)"
                " CROSS JOIN LATERAL (SELECT o.ts, o.value FROM observation_point o WHERE o.series_id = s.id"
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


def _summaries_built(conn: psycopg.Connection, metrics: tuple[str, ...] | list[str]) -> set[str]:
    """Which of `metrics` have complete hourly summaries (series_hour_state)."""
    wanted = [m for m in metrics if m in summarized_metrics()]
    if not wanted:
        return set()
    rows = conn.execute("SELECT metric FROM series_hour_state WHERE metric = ANY(%s)", (wanted,)).fetchall()
    return {r[0] for r in rows}


# Every hour with readings in [since, until), summarized: the clean ones (rollup_pending does not name them:
# neither marked nor taken by a refresh still running) from series_hour, the others from their readings in
# this statement, by the same rule (iw_hour_summaries, 0200).
_HOUR_SUMMARIES = """
hs AS (
    SELECT s.id AS sid, s.metric, h.hour, h.readings, h.first_value, h.last_ts, h.last_value, h.increase,
           h.resets
    FROM series s
    CROSS JOIN LATERAL (SELECT * FROM series_hour h
                        WHERE h.series_id = s.id AND h.hour >= %(hs_since)s AND h.hour < %(until)s OFFSET 0) h
    WHERE {where} AND NOT EXISTS (SELECT 1 FROM d WHERE d.metric = s.metric AND d.hour = h.hour)
    UNION ALL
    SELECT x.series_id, k.metric, x.hour, x.readings, x.first_value, x.last_ts, x.last_value, x.increase,
           x.resets
    FROM (SELECT d.metric, d.hour, array_agg(s.id) AS ids FROM d JOIN series s ON s.metric = d.metric
          WHERE {qualified} AND d.hour >= %(hs_since)s AND d.hour < %(until)s GROUP BY d.metric, d.hour) k
    CROSS JOIN LATERAL iw_hour_summaries(k.ids, k.hour, k.hour + interval '1 hour') x
)"""

# The hours of each bucket of the read (`span`: hour, plan day or month) composed into one summary: readings
# added, the first hour's first and the last hour's last reading, the increases added with the increase from
# each hour's last reading into the next hour's first (as a counter counts it), resets too. Composing never
# crosses a bucket's boundary, so every bucket's edges keep their readings.
_SPANS = """
spans AS (
    SELECT sid, min(metric) AS metric, sum(readings) AS readings,
           extract(epoch FROM min(hour))::float8 AS ft, extract(epoch FROM max(last_ts))::float8 AS lt,
           (array_agg(first_value ORDER BY hour))[1] AS first_value,
           (array_agg(last_value ORDER BY hour DESC))[1] AS last_value,
           sum(increase) + coalesce(sum(CASE WHEN prev IS NULL THEN NULL WHEN first_value >= prev
                                             THEN first_value - prev ELSE first_value END), 0) AS increase,
           (sum(resets) + count(*) FILTER (WHERE first_value < prev))::integer AS resets
    FROM (SELECT hs.*, date_trunc(%(span)s, (hour AT TIME ZONE 'UTC') + make_interval(secs => %(offset)s)) AS bucket,
                 lag(last_value) OVER (PARTITION BY sid, date_trunc(%(span)s, (hour AT TIME ZONE 'UTC')
                                        + make_interval(secs => %(offset)s)) ORDER BY hour) AS prev
          FROM hs) x
    GROUP BY sid, bucket  -- in the window's order, with no sort of its own (a series has one metric)
)"""

# With hours as the span, each summary is its own.
_HOURS = """
spans AS (
    SELECT sid, metric, readings, extract(epoch FROM hour)::float8 AS ft,
           extract(epoch FROM last_ts)::float8 AS lt, first_value, last_value, increase, resets
    FROM hs
)"""

# Each span stands for its readings by its last reading (at its ts) and, with more than one, its first value
# at the span's start (a read of whole hours asks of the first reading only its value and its hour) and, for
# a counter that reset within it, two points between them: one that carries the increase before the last
# reading's level (first + increase − last: never below first, since after a reset the increase includes the
# last level; held at first against rounding) and a zero, from which the last reading is a plain rise. Their
# increments add up to the span's increase, and the increment into what follows is taken from the real last
# reading. A span before the read's start (the hour read for the bases) gives its last reading only. (Four
# scans of the spans: a join to a VALUES list per span cost a third of the statement.)
_SPAN_POINTS = """
SELECT c.sid, c.lt AS t, c.last_value AS value FROM spans c
UNION ALL
SELECT c.sid, c.ft, c.first_value FROM spans c WHERE c.readings > 1 AND c.ft >= %(start_s)s
UNION ALL
SELECT c.sid, c.ft + (c.lt - c.ft) / 3, greatest(c.first_value, c.first_value + c.increase - c.last_value)
FROM spans c WHERE c.resets > 0 AND c.metric = ANY(%(counters)s) AND c.ft >= %(start_s)s
UNION ALL
SELECT c.sid, c.ft + 2 * (c.lt - c.ft) / 3, 0.0::float8
FROM spans c WHERE c.resets > 0 AND c.metric = ANY(%(counters)s) AND c.ft >= %(start_s)s
"""


def _fetch_hours(
    conn: psycopg.Connection,
    metrics: tuple[str, ...] | list[str],
    regions: list[int] | None,
    since: datetime,
    until: datetime,
    *,
    operator: str | None = None,
    entity: str | None = None,
    prior_since: datetime | None = None,
    span: Interval = "1h",
) -> dict[SeriesKey, Series]:
    """fetch_series over the whole UTC hours [since, until) of metrics whose hourly summaries are built, for
    buckets of `span`: the summaries of each bucket's hours composed (series_hour for the clean hours, those
    rollup_pending names summarized from their readings), and (with `prior_since`) each series' latest raw
    reading in [prior_since, since). The series this returns give every bucket of `span` (or longer, made of
    whole ones) the value of the raw readings. One statement, one snapshot.

    The bases come from the summaries too where they can: when `since` starts a bucket of `span`, the hour
    before it is read as well, and its last reading is the base of each series that read in it; only the
    other series are probed in the readings."""
    where, params = _filters(metrics, regions, operator, entity)
    qualified, _ = _filters(metrics, regions, operator, entity, alias="s")
    lead_in = since - timedelta(hours=1)
    with_lead_in = prior_since is not None and prior_since <= lead_in and floor_bucket(since, span) == since
    params.update(
        since=since,
        hs_since=lead_in if with_lead_in else since,
        start_s=epoch(since),
        lead_in=lead_in,
        until=until,
        d_lo=(since - timedelta(days=1)).date(),
        d_hi=(until + timedelta(days=1)).date(),
        counters=[m for m in metrics if METRICS[m].kind == Kind.COUNTER],
        span={"1h": "hour", "1d": "day", "1mo": "month"}[span],
        offset=plan_offset_s(),
    )
    sql = (
        "WITH d AS MATERIALIZED (SELECT metric, at AS hour"
        " FROM rollup_pending WHERE metric = ANY(%(metrics)s) AND day >= %(d_lo)s AND day <= %(d_hi)s), "
        + _HOUR_SUMMARIES.format(where=where, qualified=qualified)
        + ", "
        + (_HOURS if span == "1h" else _SPANS)
        + _SPAN_POINTS
    )
    if prior_since is not None and prior_since < since:
        params["prior_since"] = prior_since
        unread = " AND NOT EXISTS (SELECT 1 FROM hs WHERE hs.sid = s.id AND hs.hour = %(lead_in)s)"
        probed = where + unread if with_lead_in else where
        prior = _edge_sql(metrics, probed, params, "prior_since", "since", last=True, tag="p", by_id=True)
        if prior:
            sql = f"{sql} UNION ALL {prior}"
    return _grouped_by_id(conn, sql, params)


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
    *,
    span: Interval = "1h",
) -> SeriesMap:
    """Every reading an indicator needs for a scope in [since, until], plus each series' reading before
    `since` far enough back to carry a level or a counter into the window; for buckets of `span` from
    `since` on, whole hours may come from their summaries (fetch_series)."""
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
        span=span,
    )


_DISTINCT_SERIES = """
SELECT s.region, s.operator, s.entity FROM series s
CROSS JOIN LATERAL (SELECT 1 FROM observation_point o WHERE o.series_id = s.id LIMIT 1) x
WHERE s.metric = %(metric)s
ORDER BY s.region, s.operator, s.entity
"""


def distinct_series(conn: psycopg.Connection, metric: str) -> list[tuple[int, str, str]]:
    """Distinct (region, operator, entity) that reported `metric`: its series that hold a reading."""
    return [(int(r), str(o), str(e)) for r, o, e in conn.execute(_DISTINCT_SERIES, {"metric": metric}).fetchall()]


def read_published_series(
    conn: psycopg.Connection,
    indicator_id: str,
    *,
    region: int,
    operator: str | None,
    entity: str | None,
    start: datetime,
    end: datetime,
    interval: Interval,
) -> list[tuple[datetime, float | None, bool, bool]]:
    """The series as the boards read it: (bucket start, value, pending, current) from iw_indicator_series
    (rollups up to the published cutoff, the pending tail after it, increases cumulated since the first
    bucket). `current` is false for a bucket of a pending tail older than the newest reading of its inputs."""
    rows = conn.execute(
        "SELECT ts, value, pending, current FROM iw_indicator_series(%s, %s, %s, %s, %s, %s, %s)",
        (indicator_id, region, operator or "", start, end, interval, entity or ""),
    ).fetchall()
    return [(ts, value, bool(pending), bool(current)) for ts, value, pending, current in rows]
