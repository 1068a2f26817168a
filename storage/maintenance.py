"""Partition maintenance for plain PostgreSQL: make monthly partitions ahead, drop expired ones (and the hourly
summaries of the readings they held)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg


def create_partitions_ahead(conn: psycopg.Connection, months_ahead: int = 3, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    with conn.transaction():
        row = conn.execute(
            "SELECT iw_ensure_partitions(%s, %s)", (now, now + timedelta(days=31 * months_ahead))
        ).fetchone()
    return int(row[0]) if row else 0


def drop_old_partitions(conn: psycopg.Connection, retention_days: int, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    with conn.transaction():
        older_than = now - timedelta(days=retention_days)
        row = conn.execute("SELECT iw_apply_retention(%s)", (older_than,)).fetchone()
        conn.execute(_FORGET_DROPPED_HOURS, (older_than,))
    return int(row[0]) if row else 0


# An hourly summary (series_hour) whose readings are gone would stand for them in a live read.
_FORGET_DROPPED_HOURS = """
DELETE FROM series_hour h WHERE h.hour < %s AND NOT EXISTS (
    SELECT 1 FROM observation_point p WHERE p.series_id = h.series_id
    AND p.ts >= h.hour AND p.ts < h.hour + interval '1 hour')
"""
