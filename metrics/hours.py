"""Keeping the per-series hourly summaries (series_hour, migration 0200) current: which metrics have them, their
first build, and the hours a rollup refresh consumes summarized again in its transaction, so that every hour
rollup_pending does not name (neither marked nor taken by a refresh still running) has a current summary. metrics.readers reads them in place of the raw readings.

A summary holds an hour's first value, its last reading, how many, and the increase between them as a
counter counts it, resets included. For buckets made of whole UTC hours that is all the rules of
metrics.compute look at: a gauge's level before an hour boundary and its first value in a bucket, a
counter's increments (the increment into an hour from the previous hour's last reading, the rest within it),
a year-to-date figure's increments within its plan year. Sub-daily metrics only (a daily statistic has one
reading a day: a summary would not be smaller); a delta (the volume of the interval ending at its reading)
is read raw.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from functools import cache

import psycopg

from core.planzone import plan_offset_s
from reference.catalogue import METRICS, Kind

log = logging.getLogger(__name__)

_HOUR_S = 3600


@cache
def summarized_metrics() -> tuple[str, ...]:
    """The metrics with hourly summaries: pushed more often than daily, of a kind a summary stands for."""
    return tuple(
        sorted(m.id for m in METRICS.values() if m.cadence_s < 86400 and m.kind in (Kind.COUNTER, Kind.GAUGE, Kind.YTD))
    )


def whole_hours(since: datetime, until: datetime) -> bool:
    """Whether [since, until) is made of whole UTC hours, and plan days of whole hours (the plan offset is)."""
    return (
        plan_offset_s() % _HOUR_S == 0
        and since < until
        and since.timestamp() % _HOUR_S == until.timestamp() % _HOUR_S == 0
    )


def dirty_hour(day: date, hour: int) -> datetime:
    """The UTC hour a rollup_dirty row names."""
    return datetime.combine(day, time(hour), tzinfo=UTC)


def keep_current(conn: psycopg.Connection, dirty: list[tuple[str, date, int]]) -> int:
    """In the refresh's transaction, for the (metric, UTC day, hour) it consumed from rollup_dirty: summarize
    those hours of the summarized metrics again, and build every summary of a metric that has none yet.
    Returns the summaries written."""
    wanted = list(summarized_metrics())
    built = {r[0] for r in conn.execute("SELECT metric FROM series_hour_state WHERE metric = ANY(%s)", (wanted,))}
    written = 0
    for metric in wanted:
        if metric not in built:
            row = conn.execute("SELECT iw_summarize_metric(%s)", (metric,)).fetchone()
            n = int(row[0]) if row else 0
            written += n
            log.info("hourly summaries built", extra={"event": "rollups.hours_built", "metric": metric, "summaries": n})
    pairs = [(m, dirty_hour(d, h)) for m, d, h in dirty if m in built]
    if pairs:
        row = conn.execute(
            "SELECT iw_summarize_hours(%s, %s)", ([m for m, _ in pairs], [h for _, h in pairs])
        ).fetchone()
        written += int(row[0]) if row else 0
    return written
