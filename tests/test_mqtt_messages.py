"""Pure parts of the MQTT collector: topics and payloads to pending messages, reject reports, batching, the
bounded intake queue, and the Mosquitto password hash."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time

import pytest

from collectors.mqtt.intake import IntakeQueue, next_batch
from collectors.mqtt.messages import MAX_PAYLOAD_BYTES, reject_reports, subscription, to_pending
from collectors.mqtt.passwd import mosquitto_hash, set_password, verify
from collectors.mqtt.wire import topic_text
from ingest.ahead import read_ahead
from ingest.delivery import PendingMessage
from ingest.report import Rejection

ITEM = {"ts": "2024-01-31T00:00:00+08:00", "region": "360100", "value": 5}


def test_subscription_is_shared_only_when_a_group_is_named():
    assert subscription(None) == "infra/v1/+/+"
    assert subscription("ingest") == "$share/ingest/infra/v1/+/+"


def test_one_object_and_an_array_both_become_items_with_topic_operator_and_metric():
    one = to_pending("infra/v1/cmcc/bs5g_total", json.dumps(ITEM).encode())
    many = to_pending("infra/v1/cmcc/bs5g_total", json.dumps([ITEM, ITEM]).encode())
    assert (one.operator, one.metric, one.items, one.rejection) == ("cmcc", "bs5g_total", [ITEM], None)
    assert len(many.items) == 2


def test_payloads_are_decoded_as_json_loads_decodes_them_with_huge_integers_bounded():
    for payload in ([ITEM, {"a": [1, 2.5, None, True, "x"]}], {"value": 10**30}, [{"k": "\u00e9"}, {"k": "\u00e9"}]):
        assert to_pending("infra/v1/cmcc/bs5g_total", json.dumps(payload).encode()).items == json.loads(
            json.dumps(payload if isinstance(payload, list) else [payload])
        )
    huge = to_pending("infra/v1/cmcc/bs5g_total", b'{"value": ' + b"9" * 5000 + b"}")
    assert huge.items == [{"value": float("inf")}]


def test_rejects_topics_are_acknowledged_and_ignored():
    assert to_pending("infra/v1/cmcc/_rejects", b"{}").ignore is True


@pytest.mark.parametrize(
    ("topic", "payload", "field", "reason"),
    [
        ("infra/v1/cmcc/bs5g_total", b'{"ts": ', "", "not valid JSON"),
        ("infra/v1/cmcc/bs5g_total", b"\xc3\x28", "", "not valid UTF-8"),
        ("infra/v1/cmcc/bs5g_total", b"42", "", "payload is a JSON int"),
        ("infra/v1/cmcc/no_such_metric", json.dumps(ITEM).encode(), "metric", "unknown metric 'no_such_metric'"),
        ("infra/v1/CMCC!/bs5g_total", json.dumps(ITEM).encode(), "operator", "not a valid operator id"),
        ("infra/v2/cmcc/bs5g_total", json.dumps(ITEM).encode(), "topic", "is not infra/v1/<operator>/<metric>"),
        ("infra/v1/cmcc/bs5g_total", b" " * (MAX_PAYLOAD_BYTES + 1), "", "the limit is 262144"),
        (
            "infra/v1/cmcc/bs5g_total",
            b"\xef\xbb\xbf" + json.dumps(ITEM).encode(),
            "",
            "not valid JSON: Unexpected UTF-8 BOM",
        ),
    ],
)
def test_unusable_messages_are_refused_whole_with_a_reason(topic, payload, field, reason):
    pending = to_pending(topic, payload)
    assert pending.rejection is not None
    assert pending.rejection.field == field
    assert reason in pending.rejection.reason
    assert pending.rejection.location == f"{topic} payload"
    assert pending.items == []


def test_a_payload_of_exactly_256_kib_is_not_refused_for_its_size():
    payload = b"[" + b" " * (MAX_PAYLOAD_BYTES - 2) + b"]"
    assert to_pending("infra/v1/cmcc/bs5g_total", payload).rejection is None


def test_invalid_operator_in_topic_leaves_no_operator_to_report_to():
    assert to_pending("infra/v1/+bad/bs5g_total", b"{}").operator is None


def test_raw_text_of_a_huge_payload_is_cut_and_nul_escaped():
    pending = to_pending("infra/v1/cmcc/bs5g_total", b"\x00" + b"x" * (MAX_PAYLOAD_BYTES + 10))
    assert pending.rejection is not None
    raw = pending.rejection.raw
    assert raw.startswith("\\u0000xxx")
    assert "\x00" not in raw
    assert raw.endswith(f"[cut; {MAX_PAYLOAD_BYTES + 11} bytes in all]")
    assert len(raw) < 5000


def test_reject_reports_name_topic_index_and_reason():
    m = PendingMessage("infra/v1/cmcc/bs5g_total", "cmcc", "bs5g_total")
    m.rejections = [Rejection("infra/v1/cmcc/bs5g_total index 2", "value", "value is negative", "{}", index=2)]
    (report,) = reject_reports(m, batch_id=7)
    assert report == {
        "topic": "infra/v1/cmcc/bs5g_total",
        "index": 2,
        "field": "value",
        "reason": "value is negative",
        "raw": "{}",
        "batch_id": 7,
    }


def test_reject_reports_are_capped_with_a_note_of_how_many_more():
    m = PendingMessage("t", "cmcc", "bs5g_total")
    m.rejections = [Rejection("t", "value", "bad", "{}", index=i) for i in range(1003)]
    reports = reject_reports(m, None)
    assert len(reports) == 1001
    assert reports[-1]["reason"].startswith("3 more rejections")


def _pending(n_items: int) -> PendingMessage:
    return PendingMessage("t", "cmcc", "bs5g_total", items=[ITEM] * n_items)


def test_a_batch_closes_when_it_reaches_the_observation_limit():
    queue = IntakeQueue(100, 10**6)
    for n in (3, 3, 3, 3):
        queue.put(_pending(n), 10)
    batch = next_batch(queue, max_observations=5, interval_s=1.0)
    assert [m.size for m in batch] == [3, 3]  # 6 >= 5 after the second message
    assert len(queue) == 2


def test_a_batch_closes_when_its_interval_ends():
    queue = IntakeQueue(100, 10**6)
    queue.put(_pending(1), 10)
    assert len(next_batch(queue, max_observations=5000, interval_s=0.05)) == 1
    assert next_batch(queue, max_observations=5000, interval_s=0.01) == []


def test_intake_queue_blocks_a_producer_while_full_until_the_consumer_takes_one():
    queue = IntakeQueue(max_messages=2, max_bytes=10**6)
    queue.put(_pending(1), 10)
    queue.put(_pending(1), 10)
    done = threading.Event()
    threading.Thread(target=lambda: (queue.put(_pending(1), 10), done.set()), daemon=True).start()
    assert not done.wait(0.3)  # full: the third put waits
    assert queue.get(0.1) is not None
    assert done.wait(2)


def test_intake_queue_limits_bytes_but_always_admits_a_message_when_empty():
    queue = IntakeQueue(max_messages=100, max_bytes=100)
    assert queue.put(_pending(1), 500)  # larger than the limit, but the queue was empty
    assert not queue.put(_pending(1), 10, abandon=lambda: True)  # over the byte limit: the producer gives up


def test_password_hash_is_mosquittos_pbkdf2_sha512_format():
    salt = b"0123456789ab"
    hashed = mosquitto_hash("secret", salt=salt)
    digest = hashlib.pbkdf2_hmac("sha512", b"secret", salt, 101)
    assert hashed == f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify("secret", hashed) and not verify("other", hashed)


def test_set_password_replaces_only_that_users_line(tmp_path):
    file = tmp_path / "passwd"
    assert set_password(file, "cmcc", "one") is True
    assert set_password(file, "ctcc", "two") is True
    assert set_password(file, "cmcc", "three") is False
    lines = dict(line.split(":", 1) for line in file.read_text().splitlines())
    assert sorted(lines) == ["cmcc", "ctcc"]
    assert verify("three", lines["cmcc"]) and verify("two", lines["ctcc"])
    assert file.stat().st_mode & 0o777 == 0o600


def test_set_password_refuses_names_mosquitto_cannot_use(tmp_path):
    with pytest.raises(ValueError, match="cannot be used"):
        set_password(tmp_path / "passwd", "a:b", "x")


def test_cli_offers_ingest_mqtt_and_mqtt_passwd():
    import typer
    from typer.testing import CliRunner

    from collectors.mqtt.cli import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    ingest_help = runner.invoke(app, ["ingest", "mqtt", "--help"], terminal_width=200)
    assert ingest_help.exit_code == 0
    for option in ("--share-group", "--client-id", "--metrics-port"):
        assert option in ingest_help.output
    refused = runner.invoke(app, ["mqtt", "passwd", "Not-An-Operator", "--file", "/nonexistent/x"])
    assert refused.exit_code == 2
    assert "not a valid operator id" in refused.output


def test_read_ahead_yields_in_order_what_its_own_thread_produced():
    def produce():
        for name in ("a", "b", "c"):
            yield name, threading.current_thread().name

    got = list(read_ahead(produce(), name="mqtt-prepare"))
    assert got == [("a", "mqtt-prepare"), ("b", "mqtt-prepare"), ("c", "mqtt-prepare")]


def test_read_ahead_stops_producing_once_the_consumer_leaves():
    produced: list[int] = []

    def produce():
        for i in range(100):
            produced.append(i)
            yield i

    ahead = read_ahead(produce(), depth=1)
    assert next(ahead) == 0
    ahead.close()  # the consumer gave up (database unreachable during shutdown)
    time.sleep(0.5)
    assert len(produced) <= 3  # the item handed over, at most one waiting and one being offered


def test_read_ahead_hands_a_producing_error_to_the_consumer():
    def produce():
        yield "a"
        raise RuntimeError("disk on fire")

    ahead = read_ahead(produce())
    assert next(ahead) == "a"
    with pytest.raises(RuntimeError, match="disk on fire"):
        next(ahead)


def test_a_topic_that_is_not_utf8_is_named_by_its_repr_and_refused():
    assert topic_text(b"infra/v1/cmcc/bs5g_total") == "infra/v1/cmcc/bs5g_total"
    name = topic_text(b"infra/v1/\xff/bs5g_total")
    assert name == repr(b"infra/v1/\xff/bs5g_total")
    pending = to_pending(name, b"{}")
    assert pending.rejection is not None and pending.rejection.field == "topic"
