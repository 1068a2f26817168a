"""Retention never stalls ingest behind a long reader: dropping a month needs observation_point exclusively,
and writers queue behind a DROP that waits, so the drop waits at most RETENTION_LOCK_WAIT (1 s) and gives up
until the next run; with the reader gone, the month is dropped."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg

from ingest.pipeline import IngestPipeline
from storage.maintenance import drop_old_partitions

PIPE = IngestPipeline()


def push(conn: psycopg.Connection, ts: datetime, value: float) -> None:
    item = {"ts": ts.isoformat(), "region": "360100", "value": value}
    report = PIPE.submit_items(conn, [item], source="test", operator="cmcc", metric="traffic_mobile_gb")
    assert report.accepted == 1, report.rejections


def test_a_long_reader_postpones_retention_instead_of_stalling_writers(db_url: str) -> None:
    old, kept = datetime(2023, 1, 10, tzinfo=UTC), datetime(2023, 3, 10, tzinfo=UTC)
    now = datetime(2023, 3, 15, tzinfo=UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT iw_ensure_partitions(%s, %s)", (old, kept))
        push(conn, old, 1.0)
        push(conn, kept, 2.0)
    reader = psycopg.connect(db_url)  # a long board query: holds the table while its transaction lasts
    reader.execute("SELECT count(*) FROM observation_point").fetchone()
    try:
        # (a statement timeout, so that a drop that queued would fail here instead of waiting for the reader)
        with psycopg.connect(db_url, options="-c statement_timeout=5000") as maintenance:
            started = time.monotonic()
            assert drop_old_partitions(maintenance, 30, now=now) == 0
            assert time.monotonic() - started < 3.0
        with psycopg.connect(db_url, autocommit=True, options="-c statement_timeout=2000") as writer:
            push(writer, kept.replace(day=11), 3.0)  # not queued behind a DROP
        assert reader.execute("SELECT count(*) FROM observation").fetchone() == (3,)
    finally:
        reader.rollback()
        reader.close()
    with psycopg.connect(db_url) as maintenance:
        assert drop_old_partitions(maintenance, 30, now=now) == 1
        assert maintenance.execute("SELECT to_regclass('observation_y2023m01')").fetchone() == (None,)
        assert maintenance.execute("SELECT count(*) FROM observation").fetchone() == (2,)
