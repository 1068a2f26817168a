"""ingest.delivery against real PostgreSQL: acknowledge only after commit, retry when the connection dies,
give up without acknowledging on shutdown, map each rejection back to its own message."""

from __future__ import annotations

import psycopg
import pytest

from ingest import telemetry
from ingest.delivery import Delivery, PendingMessage

TOPIC = "infra/v1/cmcc/bs5g_total"


def item(region: str, value: object = 10) -> dict:
    return {"ts": "2024-01-31T00:00:00+08:00", "region": region, "value": value}


def message(items: list, acks: list, name: str, origin: str = TOPIC) -> PendingMessage:
    return PendingMessage(origin, "cmcc", "bs5g_total", items=items, ack=lambda: acks.append(name))


def count(db_url: str) -> int:
    with psycopg.connect(db_url) as c:
        return int(c.execute("SELECT count(*) FROM observation").fetchone()[0])


def test_messages_are_acknowledged_only_once_their_observations_are_committed(db_url):
    seen_at_ack: list[int] = []
    acks: list[str] = []

    def ack() -> None:
        seen_at_ack.append(count(db_url))  # another connection sees the committed rows
        acks.append("m")

    m = PendingMessage(TOPIC, "cmcc", "bs5g_total", items=[item("360100"), item("360200")], ack=ack)
    delivery = Delivery(lambda: psycopg.connect(db_url))
    result = delivery.deliver([m])
    delivery.close()
    assert result is not None and result.report.accepted == 2
    assert seen_at_ack == [2]
    assert acks == ["m"]


def test_a_terminated_connection_is_replaced_and_the_batch_stored_once(db_url):
    acks: list[str] = []
    retries_before = telemetry.DATABASE_RETRIES.labels("mqtt")._value.get()
    delivery = Delivery(lambda: psycopg.connect(db_url, application_name="iw-delivery-test"), sleep=lambda s: None)
    delivery.deliver([message([item("360100")], acks, "first")])
    with psycopg.connect(db_url, autocommit=True) as admin:  # cut the delivery's connection under it
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'iw-delivery-test'"
        )
    result = delivery.deliver([message([item("360200"), item("360300")], acks, "second")])
    delivery.close()
    assert result is not None and result.attempts == 2  # failed once on the dead connection, then stored
    assert acks == ["first", "second"]
    assert count(db_url) == 3
    assert telemetry.DATABASE_RETRIES.labels("mqtt")._value.get() == retries_before + 1


def test_an_unreachable_database_on_shutdown_acknowledges_nothing(db_url):
    acks: list[str] = []
    attempts: list[int] = []

    def unreachable() -> psycopg.Connection:
        attempts.append(1)
        return psycopg.connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)

    delivery = Delivery(unreachable, should_give_up=lambda: len(attempts) >= 3, sleep=lambda s: None)
    assert delivery.deliver([message([item("360100")], acks, "m")]) is None
    assert acks == []
    assert len(attempts) == 3


def deliver(delivery: Delivery, messages: list[PendingMessage], prepared: bool, db_url: str):
    """Straight, or prepared ahead (operators known, so validated before the database is touched)."""
    if not prepared:
        return delivery.deliver(messages)
    with psycopg.connect(db_url) as c:
        delivery.pipeline.known_operators(c)
    ahead = delivery.prepare(messages)
    assert all(g.batch is not None for g in ahead.groups.values())
    return delivery.deliver(ahead)


@pytest.mark.parametrize("prepared", [False, True], ids=["straight", "prepared-ahead"])
def test_rejections_of_a_batch_go_back_to_their_own_message_and_index(db_url, conn, prepared):
    acks: list[str] = []
    first = message([item("360100"), item("360200")], acks, "first")
    second = message(
        [item("360300"), item("360400", value=-1), {"region": "360500"}],  # index 1 negative, index 2 incomplete
        acks,
        "second",
        origin="infra/v1/cmcc/bs5g_total#2",
    )
    delivery = Delivery(lambda: psycopg.connect(db_url))
    result = deliver(delivery, [first, second], prepared, db_url)
    delivery.close()
    assert result is not None
    assert (result.report.accepted, result.report.rejected) == (3, 2)
    assert first.rejections == []
    assert [(r.index, r.field) for r in second.rejections] == [(2, "ts"), (1, "value")]
    rows = conn.execute("SELECT location, raw FROM quarantine ORDER BY location").fetchall()
    assert rows == [
        ("infra/v1/cmcc/bs5g_total#2 index 1", '{"ts": "2024-01-31T00:00:00+08:00", "region": "360400", "value": -1}'),
        ("infra/v1/cmcc/bs5g_total#2 index 2", '{"region": "360500"}'),  # raw as sent: no metric filled in
    ]
    assert acks == ["first", "second"]


@pytest.mark.parametrize("prepared", [False, True], ids=["straight", "prepared-ahead"])
def test_a_message_whose_topic_holds_a_nul_is_quarantined_escaped_and_acknowledged(db_url, conn, prepared):
    acks: list[str] = []
    good = message([item("360100")], acks, "good")
    # PostgreSQL text cannot hold NUL: the location is stored escaped, so the rejection is kept and the
    # message acknowledged (never held for redelivery after every restart)
    bad = message([item("360200", value="x")], acks, "bad", origin="infra/v1/cmcc/bs5g_total\x00")
    delivery = Delivery(lambda: psycopg.connect(db_url))
    result = deliver(delivery, [good, bad], prepared, db_url)
    delivery.close()
    assert result is not None and result.held == 0
    assert sorted(acks) == ["bad", "good"]
    assert count(db_url) == 1
    (location,) = conn.execute("SELECT location FROM quarantine").fetchone()
    assert "\x00" not in location and "\\u0000" in location


def test_a_message_without_operator_is_quarantined_not_stored(db_url, conn):
    acks: list[str] = []
    m = PendingMessage(
        "infra/v1/x/bs5g_total", None, "bs5g_total", items=[item("360100")], ack=lambda: acks.append("m")
    )
    delivery = Delivery(lambda: psycopg.connect(db_url))
    delivery.deliver([m])
    delivery.close()
    assert count(db_url) == 0
    assert conn.execute("SELECT reason FROM quarantine").fetchall() == [("the message names no valid operator",)]
    assert acks == ["m"]


def test_a_batch_prepared_ahead_is_stored_once_after_its_connection_was_cut(db_url):
    acks: list[str] = []
    delivery = Delivery(lambda: psycopg.connect(db_url, application_name="iw-delivery-test"), sleep=lambda s: None)
    delivery.deliver([message([item("360100")], acks, "first")])  # connected; operators loaded
    ahead = delivery.prepare([message([item("360200"), item("360300", value=-5)], acks, "second")])
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'iw-delivery-test'"
        )
    result = delivery.deliver(ahead)
    delivery.close()
    assert result is not None and result.attempts == 2
    assert (result.report.accepted, result.report.rejected) == (1, 1)
    assert [r.index for r in ahead.messages[0].rejections] == [1]  # mapped once, not once per attempt
    assert acks == ["first", "second"]
    assert count(db_url) == 2


def test_an_operator_unknown_when_prepared_is_validated_when_stored(db_url, conn):
    conn.execute("INSERT INTO operator (id, name, name_zh) VALUES ('newop', 'New operator', '新')")
    conn.commit()
    acks: list[str] = []
    delivery = Delivery(lambda: psycopg.connect(db_url))
    m = PendingMessage(
        "infra/v1/newop/bs5g_total", "newop", "bs5g_total", items=[item("360100")], ack=lambda: acks.append("m")
    )
    ahead = delivery.prepare([m])  # nothing loaded yet: validation waits for the database
    assert [g.batch for g in ahead.groups.values()] == [None]
    result = delivery.deliver(ahead)
    delivery.close()
    assert result is not None and result.report.accepted == 1
    assert acks == ["m"]
