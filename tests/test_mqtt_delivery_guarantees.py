"""The MQTT collector never loses a message and never stores one twice: SIGKILLed ingest processes, an ingest
that is down while operators publish, database connections cut mid-stream, two processes sharing a
subscription. Real Mosquitto (persistence on), real PostgreSQL, the collector as a subprocess."""

from __future__ import annotations

import json
import threading
import time

import httpx
import psycopg
import pytest

from core.embedded import free_port
from tests.conftest import Broker
from tests.mqtt_support import IngestProcess, Publisher, scalar, seq_item, wait_for

TOPIC = "infra/v1/cmcc/dc_energy_total_kwh"


def stored(db_url: str) -> int:
    return int(scalar(db_url, "SELECT count(*) FROM observation WHERE entity = 'dc-seq'"))


def assert_each_stored_once(db_url: str, n: int) -> None:
    """Observations 0..n-1 each present once with value = its sequence number, and nothing revised."""
    with psycopg.connect(db_url) as conn:
        count, distinct_ts, total = conn.execute(
            "SELECT count(*), count(DISTINCT ts), sum(value) FROM observation WHERE entity = 'dc-seq'"
        ).fetchone()
        revised = conn.execute("SELECT count(*) FROM observation_history").fetchone()[0]
        mismatched = conn.execute(
            "SELECT count(*) FROM observation WHERE entity = 'dc-seq' AND value <> extract(epoch FROM ts) - 1704038400"
        ).fetchone()[0]
    assert (count, distinct_ts) == (n, n)
    assert total == n * (n - 1) / 2  # 0 + 1 + ... + (n-1)
    assert (revised, mismatched) == (0, 0)


def publish_in_background(broker, first: int, n: int, per_second: float | None = None) -> threading.Thread:
    """Publish n sequence items from `first`, at full speed or paced at `per_second`."""

    def paced(items):
        started = time.monotonic()
        for k, item in enumerate(items):
            if per_second and k % 100 == 0:
                time.sleep(max(0.0, started + k / per_second - time.monotonic()))
            yield item

    def run() -> None:
        pub = Publisher(broker.port)
        pub.publish_all(paced((TOPIC, json.dumps(seq_item(i))) for i in range(first, first + n)))
        pub.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def ingest(tmp_path, db_url, broker):
    proc = IngestProcess(tmp_path, db_url, broker.url)
    yield proc
    proc.stop()


@pytest.mark.slow
def test_sigkilled_three_times_during_20000_messages_stores_each_exactly_once(ingest, db_url, broker):
    # Four chunks of 5000 published at full speed; the process is SIGKILLed in the middle of chunks 1-3
    # (after it stored part of the chunk, while the publisher may still be sending) and started again.
    ingest.start().wait_subscribed()
    killed_at = []
    for chunk in range(4):
        publisher = publish_in_background(broker, chunk * 5000, 5000)
        wait_for(lambda c=chunk: stored(db_url) >= c * 5000 + 1000, 60, "ingest made no progress")
        if chunk < 3:
            ingest.kill()
            killed_at.append(stored(db_url))
            publisher.join(120)
            ingest.start().wait_subscribed()
        publisher.join(120)
    wait_for(lambda: stored(db_url) == 20_000, 90, "not all 20000 stored")
    time.sleep(1.0)  # a late duplicate would show up as an extra row or a revision now
    assert_each_stored_once(db_url, 20_000)
    assert [n < (i + 1) * 5000 for i, n in enumerate(killed_at)] == [True] * 3, killed_at  # each kill mid-chunk


@pytest.mark.slow
def test_sigterm_mid_stream_then_10000_published_while_down_are_all_stored_after_restart(ingest, db_url, broker):
    ingest.start().wait_subscribed()  # creates the persistent session
    publish_in_background(broker, 0, 2_000)
    wait_for(lambda: stored(db_url) >= 300, 60, "no progress")
    started = time.monotonic()
    assert ingest.terminate(timeout=20) == 0  # SIGTERM: flush, acknowledge, disconnect, exit 0
    assert time.monotonic() - started < 15
    assert ingest.log_events("mqtt.stopped")[0]["unacknowledged_left"] == 0
    publish_in_background(broker, 2_000, 10_000).join(120)  # published while no ingest runs
    down = stored(db_url)
    assert down < 12_000
    ingest.start().wait_subscribed()
    wait_for(lambda: stored(db_url) == 12_000, 60, "backlog not stored")
    assert ingest.log_events("mqtt.connected")[-1]["session_present"] is True
    assert_each_stored_once(db_url, 12_000)


def test_database_connections_terminated_mid_stream_lose_and_duplicate_nothing(ingest, db_url, broker, pg_server):
    ingest.start().wait_subscribed()
    publisher = publish_in_background(broker, 0, 8_000, per_second=1_000)  # still streaming during the cuts
    terminated = 0
    for _ in range(3):  # cut the ingest's connections three times while it is storing
        before = stored(db_url)
        wait_for(lambda b=before: stored(db_url) > b, 60, "ingest made no progress")
        terminated += terminate_ingest_connections(db_url)
        time.sleep(0.3)
    # then a 5 s outage: the database refuses new connections (the server itself keeps running for others)
    dbname = psycopg.conninfo.conninfo_to_dict(db_url)["dbname"]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        try:
            terminated += terminate_ingest_connections(pg_server, dbname)
            retries_before = len(ingest.log_events("ingest.db_retry"))
            # more messages during the outage, so there is a batch to retry however fast the first 8,000 went
            late_publisher = publish_in_background(broker, 8_000, 2_000)
            time.sleep(5)
            retries_during = len(ingest.log_events("ingest.db_retry")) - retries_before
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    publisher.join(120)
    late_publisher.join(120)
    wait_for(lambda: stored(db_url) == 10_000, 60, "intake did not resume by itself after the outage")
    assert terminated >= 3
    assert ingest.alive()
    assert retries_during >= 2  # it kept retrying (with backoff) instead of dropping or acknowledging
    assert_each_stored_once(db_url, 10_000)


def terminate_ingest_connections(url: str, dbname: str | None = None) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        return int(
            admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = coalesce(%s, current_database()) AND application_name LIKE 'infrawatch-%%'",
                (dbname,),
            ).fetchone()[0]
        )


@pytest.mark.slow
def test_two_processes_on_a_shared_subscription_split_the_stream_and_a_killed_one_loses_nothing(
    tmp_path, db_url, broker
):
    ports = {"a": free_port(), "b": free_port()}
    share = ("--share-group", "ingest")
    a = IngestProcess(tmp_path, db_url, broker.url, "iw-shared-a", *share, "--metrics-port", str(ports["a"]))
    b = IngestProcess(tmp_path, db_url, broker.url, "iw-shared-b", *share, "--metrics-port", str(ports["b"]))
    try:
        a.start().wait_subscribed()
        b.start().wait_subscribed()
        publisher = publish_in_background(broker, 0, 6_000)
        wait_for(lambda: stored(db_url) >= 1500, 60, "no progress")
        b.kill()
        publisher.join(120)
        received_by_a = received(ports["a"])
        # Mosquitto keeps routing b's share of the stream to b's persistent session, where it waits for b.
        b.start().wait_subscribed()
        wait_for(lambda: stored(db_url) == 6_000, 60, "not all 6000 stored")
        assert_each_stored_once(db_url, 6_000)
        assert 0 < received_by_a < 6_000  # a got part of the stream, not all of it
        assert received(ports["b"]) > 0  # the restarted b took over its own share
    finally:
        a.stop()
        b.stop()


def received(port: int) -> float:
    """infrawatch_ingest_messages_received_total of one ingest process, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('infrawatch_ingest_messages_received_total{source="mqtt"}'):
            return float(line.split()[-1])
    raise AssertionError(f"no received counter in /metrics:\n{text[:500]}")


@pytest.mark.slow
def test_broker_restart_mid_stream_loses_and_duplicates_nothing(tmp_path, db_url, broker):
    # A broker of our own, restartable on the same port and store.
    durable = Broker(tmp_path / "durable")
    durable.workdir.mkdir()
    durable.start()
    # Receive Maximum 100: most of the stream waits in the broker's queue (and store) rather than in our process.
    ingest = IngestProcess(tmp_path, db_url, durable.url, "iw-test-ingest", "--receive-maximum", "100")
    try:
        ingest.start().wait_subscribed()
        publish_in_background(durable, 0, 5_000).join(120)  # all 5000 are with the broker now
        assert stored(db_url) < 5_000  # the broker stops while the ingest is still working through them
        durable.stop()
        durable.start()  # same port, same store
        wait_for(lambda: stored(db_url) == 5_000, 60, "not all 5000 stored after the broker restart")
        # it reconnects by itself, to its kept session (the last messages may be stored before it does)
        wait_for(lambda: len(ingest.log_events("mqtt.connected")) == 2, 60, "the ingest never reconnected")
        assert ingest.log_events("mqtt.connected")[-1]["session_present"] is True
        assert_each_stored_once(db_url, 5_000)
    finally:
        ingest.stop()
        durable.stop()
