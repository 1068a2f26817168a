"""A rollup refresh never makes ingest wait (migration 0210): it takes the marks out of rollup_dirty in a
short transaction of its own, so a reading for the very hour a long refresh is recomputing is stored at once
and marked again; readers count the hours a refresh has taken but not committed as pending; a refresh that
cannot take the marks quickly skips its turn instead of queueing writers behind it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from ingest.pipeline import IngestPipeline
from metrics import refresh_rollups
from metrics.readers import fetch_series
from metrics.rollups import mark_all_dirty, take_marks

PIPE = IngestPipeline()
HOUR = datetime(2023, 3, 2, 3, tzinfo=UTC)
METERS = ["dc_energy_total_kwh", "dc_energy_it_kwh"]


def push(conn: psycopg.Connection, minute: int, value: float) -> None:
    for metric, share in zip(METERS, (1.0, 0.7), strict=True):
        item = {"ts": (HOUR + timedelta(minutes=minute)).isoformat(), "region": "360100", "value": value * share}
        report = PIPE.submit_items(conn, [{**item, "entity": "dc-a"}], source="test", operator="cmcc", metric=metric)
        assert report.accepted == 1, report.rejections


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ingest_of_the_hour_a_long_refresh_works_on_does_not_wait_for_it(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        push(conn, 0, 100.0)
        push(conn, 5, 110.0)
        refresh_rollups(conn)  # summaries built
        push(conn, 10, 120.0)  # the hour is marked again
    blocker = psycopg.connect(db_url)  # holds the rollups so that the refresh's recompute waits
    blocker.execute("LOCK TABLE indicator_rollup IN ACCESS EXCLUSIVE MODE")
    done: list[int] = []

    def refresh() -> None:
        with psycopg.connect(db_url) as conn:
            done.append(refresh_rollups(conn))

    refresher = threading.Thread(target=refresh)
    refresher.start()
    try:
        with psycopg.connect(db_url, autocommit=True) as watch:
            wait_for(
                lambda: (
                    watch.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'indicator_rollup'::regclass"
                    ).fetchone()[0]
                    > 0
                )
            )
            # the refresh is working on the hour: readers count it as pending, the mark is taken
            assert watch.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
            assert watch.execute("SELECT count(*) FROM rollup_pending WHERE hour = 3").fetchone()[0] == 2
            with psycopg.connect(db_url, autocommit=True, options="-c statement_timeout=3000") as writer:
                started = time.monotonic()
                push(writer, 15, 130.0)  # before 0210 this waited for the refresh to commit
                assert time.monotonic() - started < 2.0
            assert sorted(watch.execute("SELECT metric, hour FROM rollup_dirty").fetchall()) == [
                (m, 3) for m in sorted(METERS)
            ]
    finally:
        blocker.rollback()
        blocker.close()
        refresher.join(30)
    assert done and done[0] > 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM rollup_work").fetchone() == (0,)
        refresh_rollups(conn)  # the mark left by the write during the refresh
        assert conn.execute("SELECT count(*) FROM rollup_pending").fetchone() == (0,)
        kw = {"prior_since": HOUR - timedelta(days=1)}
        raw = fetch_series(conn, METERS, None, HOUR, HOUR + timedelta(hours=1), summaries=False, **kw)
        hours = fetch_series(conn, METERS, None, HOUR, HOUR + timedelta(hours=1), **kw)
        assert len(next(iter(raw.values()))) == 4 and len(next(iter(hours.values()))) == 2  # read summarized
        assert {k: (s.value[0], s.value[-1]) for k, s in hours.items()} == {
            k: (s.value[0], s.value[-1]) for k, s in raw.items()
        }


def test_a_refresh_that_cannot_take_the_marks_quickly_skips_its_turn(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        push(conn, 0, 100.0)
    writer = psycopg.connect(db_url)  # a writer that marked an hour and has not committed
    writer.execute("INSERT INTO rollup_dirty (metric, day, hour) VALUES ('dc_energy_it_kwh', '2023-03-03', 1)")
    try:
        with psycopg.connect(db_url) as conn:
            started = time.monotonic()
            assert take_marks(conn) is False
            assert refresh_rollups(conn) == 0
            assert time.monotonic() - started < 5.0  # two waits of TAKE_MARKS_WAIT (1 s) at most
            assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] == 2  # nothing taken
    finally:
        writer.rollback()
        writer.close()
    with psycopg.connect(db_url) as conn:
        assert take_marks(conn) is True
        assert conn.execute("SELECT count(*) FROM rollup_work").fetchone()[0] == 2


def test_a_full_rebuild_queued_in_a_long_transaction_does_not_hold_writers(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        push(conn, 0, 100.0)
        refresh_rollups(conn)
    rebuild = psycopg.connect(db_url)  # `rollups refresh --full` queues every hour, not yet committed
    try:
        rebuild.execute("SELECT 1")  # a transaction of the caller's, which mark_all_dirty leaves open
        assert mark_all_dirty(rebuild) == 2
        with psycopg.connect(db_url, autocommit=True, options="-c statement_timeout=3000") as writer:
            started = time.monotonic()
            push(writer, 20, 140.0)  # the same hour: marked in rollup_dirty, apart from the rebuild's queue
            assert time.monotonic() - started < 2.0
        rebuild.commit()
    finally:
        rebuild.close()
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM rollup_pending").fetchone() == (4,)  # queued twice, taken once
        refresh_rollups(conn)
        assert conn.execute("SELECT count(*) FROM rollup_pending").fetchone() == (0,)
