"""Notifications through real loopback receivers: DingTalk and WeCom robot formats (with the DingTalk signature),
retries with backoff, SMTP e-mail, and no second firing notification after a restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.engine import evaluate
from alerts.notifiers import deliver_pending
from alerts.rules import Rule
from alerts.store import Channel, list_alerts, list_notifications, upsert_channel, upsert_rule
from core.settings import Settings
from infrawatch.scheduler import Scheduler
from ingest.pipeline import IngestPipeline
from tests.notify_support import SmtpSink, WebhookReceiver

SECRET = "SEC0123456789abcdef"  # a DingTalk robot secret looks like this


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _stale_feed(conn: psycopg.Connection) -> datetime:
    """cmcc's Nanchang traffic feed last reported 3 days ago; a stale rule (2 × 1 day) with no delays."""
    upsert_rule(conn, Rule(id="stale-traffic", kind="stale", metric="traffic_mobile_gb", title="Traffic feed silent"))
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    item = {"ts": ts.isoformat(), "region": "360100", "metric": "traffic_mobile_gb", "value": 42}
    IngestPipeline().submit_items(conn, [item], source="test", operator="cmcc")
    return datetime.now(UTC)


def test_dingtalk_payload_is_markdown_and_the_url_carries_the_documented_signature(
    conn: psycopg.Connection, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IW_TEST_DINGTALK_SECRET", SECRET)
    monkeypatch.setenv("IW_TEST_DINGTALK_URL", receiver.url + "/robot/send?access_token=tok123")
    upsert_channel(
        conn,
        Channel(
            name="ding",
            kind="dingtalk",
            config={"url_env": "IW_TEST_DINGTALK_URL", "secret_env": "IW_TEST_DINGTALK_SECRET"},
        ),
    )
    now = _stale_feed(conn)
    evaluate(conn, now)
    assert deliver_pending(conn, now).sent == 1
    (req,) = receiver.delivered
    assert req.path == "/robot/send" and req.query["access_token"] == "tok123"
    # sign = urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\n" + secret))), timestamp in ms
    timestamp = req.query["timestamp"]
    assert abs(int(timestamp) - datetime.now(UTC).timestamp() * 1000) < 60_000
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), (timestamp + "\n" + SECRET).encode(), hashlib.sha256).digest()
    ).decode()
    assert req.query["sign"] == expected  # parse_qsl decoded it
    assert "+" not in req.raw_query.split("sign=")[1] and "/" not in req.raw_query.split("sign=")[1]  # URL-encoded
    body = req.body
    assert set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"title", "text"}
    assert body["markdown"]["title"].startswith("[FIRING·warning] Traffic feed silent")
    assert "cmcc has sent no traffic_mobile_gb for Nanchang" in body["markdown"]["text"]


def test_wecom_payload_is_markdown_content(conn: psycopg.Connection, receiver: WebhookReceiver) -> None:
    upsert_channel(
        conn, Channel(name="wecom", kind="wecom", config={"url": receiver.url + "/cgi-bin/webhook/send?key=k1"})
    )
    upsert_channel(
        conn, Channel(name="wecom-text", kind="wecom", config={"url": receiver.url + "/text", "msgtype": "text"})
    )
    now = _stale_feed(conn)
    evaluate(conn, now)
    assert deliver_pending(conn, now).sent == 2
    by_path = {r.path: r for r in receiver.delivered}
    md = by_path["/cgi-bin/webhook/send"]
    assert md.query == {"key": "k1"}
    assert set(md.body) == {"msgtype", "markdown"} and md.body["msgtype"] == "markdown"
    assert set(md.body["markdown"]) == {"content"}
    assert md.body["markdown"]["content"].startswith("### ")
    assert len(md.body["markdown"]["content"].encode()) <= 4096
    text = by_path["/text"].body
    assert text["msgtype"] == "text" and "cmcc has sent no traffic_mobile_gb" in text["text"]["content"]


def test_receiver_failing_twice_then_succeeding_gets_the_notification_once(
    conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url}))
    now = _stale_feed(conn)
    evaluate(conn, now)
    receiver.fail_next(2)
    assert deliver_pending(conn, now).retrying == 1  # attempt 1 fails; next in 30 s
    assert deliver_pending(conn, now + timedelta(seconds=29)).sent == 0  # not due yet: nothing sent
    assert deliver_pending(conn, now + timedelta(seconds=30)).retrying == 1  # attempt 2 fails; next in 60 s
    (row,) = list_notifications(conn)
    assert row["state"] == "pending" and row["attempts"] == 2 and "HTTP 500" in row["last_error"]
    assert deliver_pending(conn, now + timedelta(seconds=90)).sent == 1  # attempt 3 succeeds
    assert deliver_pending(conn, now + timedelta(hours=5)).sent == 0
    assert len(receiver.requests) == 3 and len(receiver.delivered) == 1
    (row,) = list_notifications(conn)
    assert row["state"] == "sent" and row["attempts"] == 3 and row["last_error"] is None


def test_robot_refusal_is_retried_and_gives_up_visibly(conn: psycopg.Connection, receiver: WebhookReceiver) -> None:
    receiver.answer = {"errcode": 310000, "errmsg": "sign not match"}
    upsert_channel(conn, Channel(name="ding", kind="dingtalk", config={"url": receiver.url}))
    now = _stale_feed(conn)
    evaluate(conn, now)
    for minutes in range(0, 200, 10):
        deliver_pending(conn, now + timedelta(minutes=minutes), max_attempts=3)
    (row,) = list_notifications(conn)
    assert row["state"] == "failed" and row["attempts"] == 3
    assert "errcode 310000: sign not match" in row["last_error"]


def test_email_goes_through_smtp(conn: psycopg.Connection) -> None:
    sink = SmtpSink().start()
    try:
        upsert_channel(
            conn,
            Channel(
                name="mail",
                kind="email",
                config={"host": "127.0.0.1", "port": sink.port, "from": "iw@example.org", "to": ["noc@example.org"]},
            ),
        )
        now = _stale_feed(conn)
        evaluate(conn, now)
        assert deliver_pending(conn, now).sent == 1
        (mail,) = sink.messages
        assert mail["Subject"].startswith("[FIRING·warning] Traffic feed silent")
        assert mail["To"] == "noc@example.org"
        assert "cmcc has sent no traffic_mobile_gb" in mail.get_payload(decode=True).decode()
    finally:
        sink.stop()


def test_restart_while_firing_sends_no_second_firing_notification(
    db_url: str, conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url}))
    now = _stale_feed(conn)
    settings = Settings(alerts_rules_file=_empty_rules(db_url))
    first = Scheduler(db_url, settings, runner="first")
    assert first.run("evaluate", now) and first.run("deliver", now)
    assert [r.body["event"] for r in receiver.delivered] == ["firing"]
    del first  # "restart": a new scheduler instance, new connections, same database
    second = Scheduler(db_url, settings, runner="second")
    later = now + timedelta(minutes=5)
    assert second.run("evaluate", later) and second.run("deliver", later)
    assert [r.body["event"] for r in receiver.delivered] == ["firing"]
    assert len(list_alerts(conn)) == 1


def _empty_rules(db_url: str):  # the scheduler's file rules are not used here
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "rules.yaml"
    path.write_text("rules: []\n")
    return path
