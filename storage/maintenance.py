"""Partition maintenance for plain PostgreSQL: make monthly partitions ahead, drop expired ones."""

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
        row = conn.execute("SELECT iw_apply_retention(%s)", (now - timedelta(days=retention_days),)).fetchone()
    return int(row[0]) if row else 0
