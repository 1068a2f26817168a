"""Hostile MQTT payloads: a lone surrogate, a NUL or a huge integer in one item is that item's rejection,
quarantined with its raw text escaped and acknowledged; its neighbours are stored and nothing stalls the
other operators even with a Receive Maximum of 2 (real Mosquitto, real PostgreSQL, the collector as a
subprocess). A message that fails for a reason the pipeline cannot classify is retried, then dead-lettered."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.mqtt_support import IngestProcess, Publisher, Subscriber, scalar, wait_for

TS = "2024-03-31T00:00:00+08:00"


def _payload(region: int, poison: str) -> str:
    """Three items: a valid one (region), the poison one, a valid one (region + 200)."""
    good = '{"ts": "%s", "region": "%d", "value": %d}'
    return "[" + ",".join([good % (TS, region, 1), poison, good % (TS, region + 200, 3)]) + "]"


POISONS = [
    '{"ts": "2024-03-31T00:00:00+08:00", "region": "360200", "value": 2, "entity": "sur\\ud800bad"}',
    '{"ts": "2024-03-31T00:00:00+08:00", "region": "360200", "value": 2, "entity": "nul\\u0000x"}',
    '{"ts": "2024-03-31T00:00:00+08:00", "region": "360200", "value": ' + "9" * 5000 + "}",
    '{"ts": "2024-03-31T00:00:00+08:00", "region": "360200", "value": 123456789012345678901234567890}',
    '{"ts": "2024-03-31T00:00:00+08:00\\ud800", "region": "360200", "value": 2}',
]


@pytest.fixture
def ingest(tmp_path, db_url, broker):
    proc = IngestProcess(tmp_path, db_url, broker.url, "iw-hostile", "--receive-maximum", "2").start()
    proc.wait_subscribed()
    yield proc
    proc.stop()


def test_surrogate_nul_and_huge_integer_items_do_not_stall_another_operator(ingest, db_url, broker):
    rejects = Subscriber(broker.port, "infra/v1/cmcc/_rejects")
    pub = Publisher(broker.port)
    # cmcc: five messages, each a valid item, a poison item and a valid item (metric from the topic)
    poison = [("infra/v1/cmcc/bs5g_total", _payload(360100, p)) for p in POISONS]
    pub.publish_all(poison)
    # behind them, another operator's valid messages
    pub.publish_all(
        [("infra/v1/ctcc/bs5g_total", json.dumps({"ts": TS, "region": str(r), "value": 7})) for r in (360100, 360300)]
    )
    wait_for(
        lambda: scalar(db_url, "SELECT count(*) FROM observation WHERE operator = 'ctcc'") == 2,
        30,
        "the second operator's messages were stalled behind the poison ones",
    )
    # the good neighbours of every poison item are stored: regions 360100 and 360300 of cmcc, once each
    wait_for(lambda: scalar(db_url, "SELECT count(*) FROM quarantine") == 5, 20, "5 poison items not quarantined")
    assert scalar(db_url, "SELECT count(*) FROM observation WHERE operator = 'cmcc'") == 2  # same identities x5
    assert scalar(db_url, "SELECT sum(accepted + duplicates) FROM ingest_batch WHERE operator = 'cmcc'") == 10
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT location, field, reason, raw FROM quarantine ORDER BY id").fetchall()
    assert all(loc.endswith("index 1") for loc, *_ in rows), rows  # each the middle item, not the message
    reasons = sorted(reason for _, _, reason, _ in rows)
    assert sum("lone UTF-16 surrogate" in r for r in reasons) == 2
    assert sum("control character (U+0000)" in r for r in reasons) == 1
    assert sum("out of range" in r or "too large" in r for r in reasons) == 2
    assert any("sur\\ud800bad" in raw for *_, raw in rows)  # raw kept, escaped
    wait_for(lambda: len(rejects.messages) == 5, 10, "5 reports not published on _rejects")
    # every message was acknowledged: a restart of the collector brings nothing back
    ingest.terminate()
    ingest.start().wait_subscribed()
    pub.publish_all([("infra/v1/ctcc/bs5g_total", json.dumps({"ts": TS, "region": "360500", "value": 7}))])
    wait_for(lambda: scalar(db_url, "SELECT count(*) FROM observation WHERE operator = 'ctcc'") == 3, 20, "lost")
    assert scalar(db_url, "SELECT count(*) FROM quarantine") == 5
    pub.close()
    rejects.close()


def test_a_message_failing_for_an_unclassified_reason_is_retried_then_dead_lettered(ingest, db_url, broker):
    # A real database fault no validation foresees: a trigger refusing one value.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION iw_refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.value = 666 THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; RETURN NEW; END $$"
        )
        conn.execute(  # a row trigger on the partitioned table applies to every partition
            "CREATE TRIGGER iw_refuse_666 BEFORE INSERT OR UPDATE ON observation_point FOR EACH ROW "
            "EXECUTE FUNCTION iw_refuse_666()"
        )
    pub = Publisher(broker.port)
    pub.publish_all(
        [
            ("infra/v1/cmcc/bs5g_total", json.dumps([{"ts": TS, "region": "360100", "value": 666}])),
            ("infra/v1/ctcc/bs5g_total", json.dumps({"ts": TS, "region": "360300", "value": 7})),
            ("infra/v1/cmcc/bs5g_total", json.dumps({"ts": TS, "region": "360400", "value": 8})),
        ]
    )
    wait_for(lambda: scalar(db_url, "SELECT count(*) FROM observation") == 2, 30, "neighbours not stored")
    wait_for(lambda: scalar(db_url, "SELECT count(*) FROM quarantine") == 1, 20, "poison not dead-lettered")
    reason = scalar(db_url, "SELECT reason FROM quarantine")
    assert "after 3 attempts" in reason and "refused by the test trigger" in reason
    assert len(ingest.log_events("ingest.poison_retry")) == 2
    pub.close()
