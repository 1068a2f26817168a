"""Alerts notified as Alertmanager groups them: one message per rule, group and interval listing its alerts
with counts; a target already missed when its rule appears stays quiet; a resolution carries the value at
resolution. Observations through the ingest pipeline, the engine at an explicit `now`, a loopback webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from alerts.engine import evaluate
from alerts.grouping import group_key, message_due
from alerts.notifiers import deliver_pending, text_of, title_of
from alerts.rules import Rule
from alerts.store import Channel, list_alerts, upsert_channel, upsert_rule
from ingest.pipeline import IngestPipeline
from metrics import PLAN_TZ, Target, upsert_target
from tests.notify_support import WebhookReceiver

DAY = timedelta(days=1)
MIN = timedelta(minutes=1)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _traffic(conn: psycopg.Connection, operator: str, ts: datetime, regions: tuple[int, ...]) -> None:
    items = [{"ts": ts.isoformat(), "region": str(r), "metric": "traffic_mobile_gb", "value": 10} for r in regions]
    report = IngestPipeline().submit_items(conn, items, source="test", operator=operator)
    assert report.rejected == 0, report.rejections


def _hook(conn: psycopg.Connection, receiver: WebhookReceiver) -> None:
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url}))


# -- one message per group and interval --------------------------------------------------------------------


def test_each_operator_group_gets_one_message_and_later_alerts_wait_for_the_group_interval(
    conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    # one stale rule per metric, grouped by operator: cmcc's mobile and fixed traffic are two feeds of
    # two rules; here one rule grouped by nothing gathers every operator's silent feed in one group
    upsert_rule(
        conn,
        Rule(id="stale-all", kind="stale", metric="traffic_mobile_gb", title="Traffic silent", group_by=[]),
    )
    upsert_rule(conn, Rule(id="stale-by-op", kind="stale", metric="traffic_mobile_gb", title="Traffic by operator"))
    _hook(conn, receiver)
    t = datetime.now(UTC).replace(microsecond=0) - 4 * DAY
    _traffic(conn, "cmcc", t, (360100, 360200))
    _traffic(conn, "ctcc", t, (360100,))
    _traffic(conn, "cucc", t + DAY, (360700,))  # silent one day later than the others

    first = t + 2 * DAY + MIN  # cmcc and ctcc stale
    evaluate(conn, first)
    deliver_pending(conn, first)
    by_rule = {}
    for r in receiver.delivered:
        by_rule.setdefault(r.body["rule"]["id"], []).append(r.body)
    # grouped by nothing: one message listing both feeds; by operator: one message per operator
    (everything,) = by_rule["stale-all"]
    assert everything["count"] == 2 and everything["counts"] == {"firing": 2, "new": 2, "resolved": 0}
    assert sorted(a["scope"]["operator"] for a in everything["alerts"]) == ["cmcc", "ctcc"]
    assert "(2 firing)" in everything["title"]
    assert sorted(m["group"]["operator"] for m in by_rule["stale-by-op"]) == ["cmcc", "ctcc"]
    assert all(m["count"] == 1 for m in by_rule["stale-by-op"])

    # cucc goes stale a day later: its own operator group is new and is told at once; the group of
    # everything was told within its 5-minute interval only if that has passed since its last message
    receiver.requests.clear()
    later = t + 3 * DAY + MIN
    evaluate(conn, later)
    deliver_pending(conn, later)
    assert [(r.body["rule"]["id"], r.body["counts"]) for r in receiver.delivered] == [
        ("stale-all", {"firing": 3, "new": 1, "resolved": 0}),
        ("stale-by-op", {"firing": 1, "new": 1, "resolved": 0}),
    ]
    listed = receiver.delivered[0].body["alerts"]
    assert listed[0]["new"] and listed[0]["scope"]["operator"] == "cucc"  # what is new comes first


def test_changes_within_the_group_interval_wait_and_go_as_one_message(
    conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    upsert_rule(
        conn,
        Rule(id="stale-all", kind="stale", metric="traffic_mobile_gb", group_by=[], group_interval="10m"),
    )
    _hook(conn, receiver)
    t = datetime.now(UTC).replace(microsecond=0) - 4 * DAY
    _traffic(conn, "cmcc", t, (360100,))
    _traffic(conn, "ctcc", t + 2 * MIN, (360100,))
    _traffic(conn, "cucc", t + 4 * MIN, (360100,))
    stale = t + 2 * DAY + MIN
    for k in range(0, 12, 2):  # cmcc, then ctcc, then cucc go stale two minutes apart
        evaluate(conn, stale + k * MIN)
        deliver_pending(conn, stale + k * MIN)
    # the first at once; the two that followed within 10 minutes wait and go together at +10 min
    assert [r.body["counts"] for r in receiver.delivered] == [
        {"firing": 1, "new": 1, "resolved": 0},
        {"firing": 3, "new": 2, "resolved": 0},
    ]
    evaluate(conn, stale + 30 * MIN)
    deliver_pending(conn, stale + 30 * MIN)
    assert len(receiver.delivered) == 2  # nothing changed: nothing sent (no repeat set)


def test_a_new_group_waits_group_wait_for_more_alerts(conn: psycopg.Connection, receiver: WebhookReceiver) -> None:
    upsert_rule(conn, Rule(id="stale-wait", kind="stale", metric="traffic_mobile_gb", group_wait="30s"))
    _hook(conn, receiver)
    t = datetime.now(UTC).replace(microsecond=0) - 4 * DAY
    _traffic(conn, "cmcc", t, (360100,))
    now = t + 2 * DAY + MIN
    evaluate(conn, now)
    assert deliver_pending(conn, now + timedelta(seconds=29)).sent == 0
    assert deliver_pending(conn, now + timedelta(seconds=30)).sent == 1


def test_reminders_go_per_group_every_repeat_until_acknowledged() -> None:
    kw = {"group_wait_s": 0, "group_interval_s": 300, "repeat_s": 3600}
    assert message_due(dirty_since=T0, last_sent_at=None, now=T0, unacknowledged_firing=True, **kw) == "changes"
    assert message_due(dirty_since=T0, last_sent_at=T0 - MIN, now=T0, unacknowledged_firing=True, **kw) is None
    sent = T0 - 5 * MIN
    assert message_due(dirty_since=T0, last_sent_at=sent, now=T0, unacknowledged_firing=True, **kw) == "changes"
    assert message_due(dirty_since=None, last_sent_at=T0, now=T0 + 59 * MIN, unacknowledged_firing=True, **kw) is None
    due = message_due(dirty_since=None, last_sent_at=T0, now=T0 + 60 * MIN, unacknowledged_firing=True, **kw)
    assert due == "reminder"
    assert message_due(dirty_since=None, last_sent_at=T0, now=T0 + DAY, unacknowledged_firing=False, **kw) is None


def test_group_keys_come_from_the_rules_group_by_labels() -> None:
    scope = {"operator": "cmcc", "metric": "bs5g_total", "region": 360100}
    assert group_key(scope, ["operator"]) == "operator=cmcc"
    assert group_key(scope, ["operator", "region"]) == "operator=cmcc,region=360100"
    assert group_key({"target": "jx-2023-5g-new", "region": 360000}, ["operator"]) == ""
    with pytest.raises(ValueError, match="unknown group_by label"):
        Rule(id="x", kind="stale", metric="bs5g_total", group_by=["city"])


def test_a_group_message_reads_with_its_counts() -> None:
    message = {
        "event": "firing",
        "rule": {"id": "stale", "title": "Feeds silent", "kind": "stale"},
        "group": {"operator": "cmcc"},
        "severity": "warning",
        "at": T0.isoformat(),
        "count": 3,
        "counts": {"firing": 2, "new": 1, "resolved": 1},
        "alerts": [
            {"state": "firing", "new": True, "severity": "warning", "summary": "a is silent"},
            {"state": "firing", "new": False, "severity": "warning", "summary": "b is silent"},
            {"state": "resolved", "new": False, "severity": "warning", "summary": "c sends again"},
        ],
    }
    assert title_of(message) == "[FIRING·warning] Feeds silent · operator cmcc (2 firing (1 new), 1 resolved)"
    text = text_of(message)
    assert "- [warning] new: a is silent" in text and "- [warning] resolved: c sends again" in text


# -- targets: already missed stays quiet; the resolution carries the value at resolution -------------------


def _target(conn: psycopg.Connection, deadline: date) -> None:
    upsert_target(
        conn,
        Target(
            id="nc-5g",
            title="Nanchang 5G stations",
            indicator="bs5g_total",
            region=360100,
            comparator=">=",
            goal=1000,
            baseline=0,
            start=date(2025, 1, 1),
            deadline=deadline,
        ),
    )


def _bs5g(conn: psycopg.Connection, points: list[tuple[datetime, int]]) -> None:
    items = [{"ts": ts.isoformat(), "region": "360100", "metric": "bs5g_total", "value": v} for ts, v in points]
    report = IngestPipeline().submit_items(conn, items, source="test", operator="cmcc")
    assert report.rejected == 0, report.rejections


def _month(m: int) -> datetime:
    return datetime(2025, m, 1, tzinfo=PLAN_TZ)


def test_a_target_already_missed_when_its_rule_first_evaluates_does_not_notify(
    conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    _target(conn, date(2025, 6, 30))
    _bs5g(conn, [(_month(m), 100 * (m - 1)) for m in range(1, 8)])  # 500 by June 30: missed
    upsert_rule(conn, Rule(id="target-nc-5g", kind="target", target="nc-5g", repeat="1h"))
    _hook(conn, receiver)
    august = _month(8)
    evaluate(conn, august)
    evaluate(conn, august + 2 * DAY)  # not even a reminder
    deliver_pending(conn, august + 2 * DAY)
    (alert,) = list_alerts(conn)  # recorded (the page shows it) …
    assert alert.scope["target"] == "nc-5g" and "missed" in alert.summary
    assert receiver.requests == []  # … but nobody is told about a miss there was never time to act on
    assert conn.execute("SELECT count(*) FROM notification").fetchone() == (0,)


def test_a_target_missed_while_its_rule_watched_it_notifies(
    conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    _target(conn, date(2025, 6, 30))
    _bs5g(conn, [(_month(m), 200 * (m - 1)) for m in range(1, 5)])  # 600 by April (497 due): on track
    upsert_rule(conn, Rule(id="target-nc-5g", kind="target", target="nc-5g"))
    _hook(conn, receiver)
    evaluate(conn, _month(4) + timedelta(hours=1))
    assert list_alerts(conn) == []
    _bs5g(conn, [(_month(m), 600) for m in (5, 6, 7)])  # stalls: missed at the deadline
    evaluate(conn, _month(8))
    deliver_pending(conn, _month(8))
    (request,) = receiver.delivered
    assert request.body["event"] == "firing" and "missed" in request.body["alerts"][0]["summary"]


def test_a_resolution_carries_the_value_at_resolution(conn: psycopg.Connection, receiver: WebhookReceiver) -> None:
    _target(conn, date(2025, 12, 31))
    upsert_rule(conn, Rule(id="target-nc-5g", kind="target", target="nc-5g"))
    _hook(conn, receiver)
    _bs5g(conn, [(_month(m), 100 * (m - 1)) for m in range(1, 8)] + [(_month(m), 600) for m in (8, 9, 10)])
    october = _month(10) + timedelta(hours=1)
    evaluate(conn, october)
    (firing,) = list_alerts(conn)
    assert firing.value == 600
    _bs5g(conn, [(_month(10) + DAY, 1100)])  # 1,100 on 2 October: achieved
    evaluate(conn, october + 2 * DAY)
    deliver_pending(conn, october + 2 * DAY)
    (resolved,) = list_alerts(conn, "resolved")
    assert resolved.value == 1100 and "achieved" in resolved.summary
    first, second = receiver.delivered
    assert first.body["alerts"][0]["value"] == 600
    assert second.body["event"] == "resolved" and second.body["alerts"][0]["value"] == 1100
    assert "actual 1,100" in second.body["text"]
