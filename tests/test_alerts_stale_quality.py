"""Stale and quality rules end to end: observations through the ingest pipeline, the engine at an explicit
`now`, grouped notifications to a real loopback webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.engine import evaluate
from alerts.notifiers import deliver_pending
from alerts.rules import Rule, read_rules_file
from alerts.store import Channel, list_alerts, upsert_channel, upsert_rule
from ingest.pipeline import IngestPipeline
from reference.regions import CITIES
from tests.notify_support import WebhookReceiver

DAY = timedelta(days=1)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _push(conn: psycopg.Connection, operator: str, ts: datetime, regions: tuple[int, ...], value: float = 10.0):
    items = [{"ts": ts.isoformat(), "region": str(r), "metric": "traffic_mobile_gb", "value": value} for r in regions]
    report = IngestPipeline().submit_items(conn, items, source="test", operator=operator)
    assert report.accepted + report.duplicates + report.revised == len(items), report.rejections
    return report


def _rule(rule_id: str) -> Rule:
    return next(r for r in read_rules_file() if r.id == rule_id)


def test_an_operator_silent_in_all_eleven_cities_is_one_alert_for_its_feed(
    conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    upsert_rule(
        conn, Rule(id="stale-traffic-mobile-gb", kind="stale", metric="traffic_mobile_gb")
    )  # traffic_mobile_gb: cadence 1 day, stale after 2 days
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url + "/alerts"}))
    t = datetime.now(UTC).replace(microsecond=0) - 3 * DAY
    _push(conn, "cmcc", t, CITIES)  # cmcc reports all eleven cities at t, then goes silent
    _push(conn, "ctcc", t, (360100,))
    _push(conn, "ctcc", t + 2 * DAY, (360100,))  # ctcc keeps reporting

    evaluate(conn, t + 2 * DAY)  # exactly 2 days of silence: not yet stale
    assert list_alerts(conn) == []
    report = evaluate(conn, t + 2 * DAY + timedelta(minutes=1))
    # one alert for the feed (the old engine raised one per city: eleven)
    (alert,) = list_alerts(conn)
    assert report.fired == 1
    assert alert.scope == {"operator": "cmcc", "metric": "traffic_mobile_gb"}
    assert "cmcc has sent no traffic_mobile_gb for any of its 11 regions" in alert.summary
    assert alert.value == pytest.approx(2 * 86400 + 60)

    sent = deliver_pending(conn, t + 2 * DAY + timedelta(minutes=1))
    assert sent.sent == 1
    (request,) = receiver.delivered
    assert request.path == "/alerts"
    assert request.body["event"] == "firing" and request.body["count"] == 1
    assert request.body["group"] == {"operator": "cmcc"}
    assert request.body["rule"]["id"] == "stale-traffic-mobile-gb"

    # evaluating again while still silent: nothing new
    evaluate(conn, t + 2 * DAY + timedelta(minutes=2))
    deliver_pending(conn, t + 2 * DAY + timedelta(minutes=2))
    assert len(receiver.delivered) == 1

    # cmcc resumes: resolved, notified once the group interval (5 min) since the firing message has passed,
    # with the value at resolution (seconds since the newest reading: 1 min), not the firing value
    _push(conn, "cmcc", t + 2 * DAY + timedelta(minutes=2), CITIES)
    report = evaluate(conn, t + 2 * DAY + timedelta(minutes=3))
    assert report.resolved == 1 and list_alerts(conn) == []
    (resolved,) = list_alerts(conn, "resolved")
    assert resolved.value == pytest.approx(60) and "cmcc sends traffic_mobile_gb again" in resolved.summary
    deliver_pending(conn, t + 2 * DAY + timedelta(minutes=5))
    assert len(receiver.delivered) == 1
    deliver_pending(conn, t + 2 * DAY + timedelta(minutes=6))
    assert len(receiver.delivered) == 2
    body = receiver.delivered[1].body
    assert body["event"] == "resolved" and body["counts"] == {"firing": 0, "new": 0, "resolved": 1}
    assert body["alerts"][0]["value"] == pytest.approx(60)


def test_a_feed_silent_in_some_cities_names_them_in_one_alert(conn: psycopg.Connection) -> None:
    upsert_rule(conn, Rule(id="stale-traffic-mobile-gb", kind="stale", metric="traffic_mobile_gb"))
    t = datetime.now(UTC).replace(microsecond=0) - 3 * DAY
    _push(conn, "cucc", t, CITIES)
    _push(conn, "cucc", t + 2 * DAY, tuple(c for c in CITIES if c not in (360800, 360900)))
    evaluate(conn, t + 2 * DAY + timedelta(minutes=1))
    (alert,) = list_alerts(conn)
    assert alert.scope == {"operator": "cucc", "metric": "traffic_mobile_gb"}
    assert "for 2 of its 11 regions (Ji'an 吉安市, Yichun 宜春市)" in alert.summary


def test_stale_alert_fires_after_the_cadence_of_the_metric(conn: psycopg.Connection) -> None:
    # a custom rule with factor 1: silent longer than one cadence (1 day for traffic_mobile_gb)
    upsert_rule(conn, Rule(id="stale-1x", kind="stale", metric="traffic_mobile_gb", cadence_factor=1))
    t = datetime.now(UTC).replace(microsecond=0) - 2 * DAY
    _push(conn, "cucc", t, (360700,))
    evaluate(conn, t + DAY)
    assert list_alerts(conn) == []
    evaluate(conn, t + DAY + timedelta(seconds=1))
    (alert,) = list_alerts(conn, operator="cucc")
    assert alert.scope == {"operator": "cucc", "metric": "traffic_mobile_gb"}
    assert alert.value == 86401.0  # seconds of silence
    assert list_alerts(conn, operator="cmcc") == []


def test_rejected_share_above_five_percent_over_a_day_fires_after_ten_minutes(conn: psycopg.Connection) -> None:
    upsert_rule(conn, _rule("quality-rejected-share-5pct"))  # limit 5 %, window 24 h, for 10 min
    ts = (datetime.now(UTC) - DAY).replace(microsecond=0).isoformat()
    good = [{"ts": ts, "region": str(c), "metric": "traffic_fixed_gb", "value": 5} for c in CITIES]
    # cucc: 11 + 11 + 14 = 36 received, 3 rejected (8.3 %); ctcc: 11 + 11 + 1 = 23, 1 rejected (4.3 %, under)
    bad = [{"ts": ts, "region": "360100", "metric": "traffic_fixed_gb", "value": -1}]
    pipeline = IngestPipeline()
    for _ in range(2):
        pipeline.submit_items(conn, good, source="test", operator="cucc")
        pipeline.submit_items(conn, good, source="test", operator="ctcc")
    pipeline.submit_items(conn, good + bad * 3, source="test", operator="cucc")
    pipeline.submit_items(conn, bad, source="test", operator="ctcc")

    now = datetime.now(UTC) + timedelta(seconds=1)
    evaluate(conn, now)
    (pending,) = list_alerts(conn, "pending")
    assert pending.scope == {"operator": "cucc"} and list_alerts(conn) == []
    evaluate(conn, now + timedelta(minutes=10))
    (firing,) = list_alerts(conn)
    assert firing.id == pending.id and firing.value == pytest.approx(3 / 36, abs=1e-4)
    assert "3 of 36 observations rejected" in firing.summary
    # a day later the window holds nothing: resolved after the hour's resolve delay
    evaluate(conn, now + DAY + timedelta(minutes=11))
    assert len(list_alerts(conn)) == 1
    evaluate(conn, now + DAY + timedelta(minutes=72))
    assert list_alerts(conn) == [] and list_alerts(conn, "resolved")[0].id == firing.id
