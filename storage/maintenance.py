"""Partition maintenance for plain PostgreSQL: make monthly partitions ahead, drop expired ones (and the hourly
summaries of the readings they held)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import psycopg

log = logging.getLogger(__name__)

#: How long dropping a partition may wait for the readers of observation_point. The DROP needs the parent
#: exclusively, and every writer queues behind a DROP that waits: past this, retention gives up until its next
#: run instead of stalling ingest behind a long board query. (DETACH … CONCURRENTLY, which would not block
#: writers, is refused while the table has a default partition, and observation_default catches readings
#: outside every month.)
RETENTION_LOCK_WAIT = "1s"


def create_partitions_ahead(conn: psycopg.Connection, months_ahead: int = 3, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    with conn.transaction():
        row = conn.execute(
            "SELECT iw_ensure_partitions(%s, %s)", (now, now + timedelta(days=31 * months_ahead))
        ).fetchone()
    return int(row[0]) if row else 0


def drop_old_partitions(conn: psycopg.Connection, retention_days: int, now: datetime | None = None) -> int:
    """Drop the months (chunks on TimescaleDB) older than the retention, and the hourly summaries of their
    readings; returns how many were dropped, 0 when a reader held the table longer than RETENTION_LOCK_WAIT
    (the next run tries again)."""
    now = now or datetime.now(UTC)
    older_than = now - timedelta(days=retention_days)
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{RETENTION_LOCK_WAIT}'")
            row = conn.execute("SELECT iw_apply_retention(%s)", (older_than,)).fetchone()
            conn.execute(_FORGET_DROPPED_HOURS, (older_than,))
    except psycopg.errors.LockNotAvailable:
        log.warning(
            "retention postponed: readers held the observations",
            extra={"event": "storage.retention_busy", "waited": RETENTION_LOCK_WAIT},
        )
        return 0
    return int(row[0]) if row else 0


# An hourly summary (series_hour) whose readings are gone would stand for them in a live read.
_FORGET_DROPPED_HOURS = """
DELETE FROM series_hour h WHERE h.hour < %s AND NOT EXISTS (
    SELECT 1 FROM observation_point p WHERE p.series_id = h.series_id
    AND p.ts >= h.hour AND p.ts < h.hour + interval '1 hour')
"""
