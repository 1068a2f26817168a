"""Target and threshold rules end to end: observations through the ingest pipeline, progress and daily PUE from
the metrics layer, the engine at an explicit `now`, notifications to a loopback webhook, robot and SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from alerts.engine import evaluate
from alerts.notifiers import deliver_pending
from alerts.rules import Rule, read_rules_file
from alerts.store import Channel, list_alerts, upsert_channel, upsert_rule
from ingest.pipeline import IngestPipeline
from metrics import PLAN_TZ, Target, evaluate_targets, upsert_target
from tests.notify_support import SmtpSink, WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


def _bs5g(conn: psycopg.Connection, points: list[tuple[datetime, int]]) -> None:
    items = [{"ts": ts.isoformat(), "region": "360100", "metric": "bs5g_total", "value": v} for ts, v in points]
    report = IngestPipeline().submit_items(conn, items, source="test", operator="cmcc")
    assert report.rejected == 0, report.rejections


def _status(conn: psycopg.Connection, at: datetime) -> str:
    (p,) = evaluate_targets(conn, as_of=at, target_ids=["nc-5g"])
    return p.status


def test_target_going_off_track_fires_once_per_channel_and_resolves_once(
    conn: psycopg.Connection, receiver: WebhookReceiver, smtp: SmtpSink
) -> None:
    # Nanchang must reach 1,000 5G base stations (from 0) during 2025.
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
            deadline=date(2025, 12, 31),
        ),
    )
    upsert_rule(conn, Rule(id="target-nc-5g", kind="target", target="nc-5g", resolve_after="1h", repeat="7d"))
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url + "/hook"}))
    upsert_channel(conn, Channel(name="ding", kind="dingtalk", config={"url": receiver.url + "/ding"}))
    upsert_channel(
        conn,
        Channel(name="mail", kind="email", config={"host": "127.0.0.1", "port": smtp.port, "to": ["noc@example.org"]}),
    )

    def month(m: int) -> datetime:
        return datetime(2025, m, 1, tzinfo=PLAN_TZ)

    # Jan..Jul: 100 a month (a pace reaching 1,100 by December) → on track
    _bs5g(conn, [(month(m), 100 * (m - 1)) for m in range(1, 8)])
    july = month(7) + timedelta(hours=1)
    assert _status(conn, july) == "on_track"
    evaluate(conn, july)
    assert list_alerts(conn, "all") == []

    # Aug..Oct: no growth (600, 600, 600) → projected 600 ≪ 1,000 → off track
    _bs5g(conn, [(month(m), 600) for m in (8, 9, 10)])
    october = month(10) + timedelta(hours=1)
    assert _status(conn, october) == "off_track"
    report = evaluate(conn, october)
    (alert,) = list_alerts(conn)
    assert report.fired == 1 and alert.severity == "critical" and alert.scope["target"] == "nc-5g"
    assert "off track" in alert.summary
    deliver_pending(conn, october)
    evaluate(conn, october + timedelta(minutes=1))  # still off track: nothing new
    deliver_pending(conn, october + timedelta(minutes=1))
    assert sorted(r.path for r in receiver.delivered) == ["/ding", "/hook"]
    assert len(smtp.messages) == 1 and "[FIRING·critical]" in smtp.messages[0]["Subject"]

    # 1,100 stations on Oct 2 → achieved → resolved after the 1 h resolve delay, notified once per channel
    _bs5g(conn, [(month(10) + timedelta(days=1), 1100)])
    oct2 = month(10) + timedelta(days=1, hours=1)
    assert _status(conn, oct2) == "achieved"
    evaluate(conn, oct2)
    assert len(list_alerts(conn)) == 1  # resolve delay: still firing
    evaluate(conn, oct2 + timedelta(hours=1))
    assert list_alerts(conn) == [] and [a.id for a in list_alerts(conn, "resolved")] == [alert.id]
    deliver_pending(conn, oct2 + timedelta(hours=1))
    deliver_pending(conn, oct2 + timedelta(hours=2))
    events = sorted((r.path, r.body.get("event") or r.body["msgtype"]) for r in receiver.delivered)
    assert events == [("/ding", "markdown"), ("/ding", "markdown"), ("/hook", "firing"), ("/hook", "resolved")]
    hook_resolved = next(r for r in receiver.delivered if r.path == "/hook" and r.body["event"] == "resolved")
    assert hook_resolved.body["title"].startswith("[RESOLVED·critical]")
    ding_resolved = [r for r in receiver.delivered if r.path == "/ding"][1]
    assert ding_resolved.body["markdown"]["title"].startswith("[RESOLVED·critical]")
    assert len(smtp.messages) == 2 and "[RESOLVED·critical]" in smtp.messages[1]["Subject"]


def _dc_readings(conn: psycopg.Connection, entity: str, first_day: date, pues: list[float]) -> None:
    """Meter readings at 00:00 and 23:59 of each day: IT energy +100 kWh a day, facility energy +100 × PUE.

    Nothing is used between 23:59 and 00:00, so each day's increase is that day's own.
    """
    it, total = 5000.0, 8000.0
    start = datetime.combine(first_day - timedelta(days=1), datetime.min.time(), PLAN_TZ) + timedelta(
        hours=23, minutes=59
    )
    items = [(start, it, total)]
    for i, pue in enumerate(pues):
        day = datetime.combine(first_day + timedelta(days=i), datetime.min.time(), PLAN_TZ)
        items.append((day, it, total))
        it, total = it + 100, total + 100 * pue
        items.append((day + timedelta(hours=23, minutes=59), it, total))
    obs = []
    for ts, i_kwh, t_kwh in items:
        base = {"ts": ts.isoformat(), "region": "360700", "entity": entity}
        obs.append({**base, "metric": "dc_energy_it_kwh", "value": i_kwh})
        obs.append({**base, "metric": "dc_energy_total_kwh", "value": round(t_kwh, 3)})
    report = IngestPipeline().submit_items(conn, obs, source="test", operator="gzdc")
    assert report.rejected == 0, report.rejections


def test_data_centre_above_pue_1_5_for_seven_days_fires_and_one_dipping_on_day_4_does_not(
    conn: psycopg.Connection, receiver: WebhookReceiver
) -> None:
    conn.execute("INSERT INTO operator (id, name) VALUES ('gzdc', 'Ganzhou DC operator')")
    conn.commit()
    upsert_rule(conn, next(r for r in read_rules_file() if r.id == "dc-pue-above-1.5-7d"))
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url}))
    today = datetime.now(PLAN_TZ).date()
    d1 = today - timedelta(days=10)
    _dc_readings(conn, "GZ-DC-HOT", d1, [1.6] * 7)  # 1.6 every day
    _dc_readings(conn, "GZ-DC-DIP", d1, [1.6, 1.6, 1.6, 1.4, 1.6, 1.6, 1.6])  # dips to 1.4 on day 4
    _dc_readings(conn, "GZ-DC-OK", d1, [1.3] * 7)

    day8 = datetime.combine(d1 + timedelta(days=7), datetime.min.time(), PLAN_TZ) + timedelta(minutes=30)
    report = evaluate(conn, day8.astimezone(UTC))
    assert report.errors == {}
    (alert,) = list_alerts(conn)
    assert alert.scope == {"region": 360700, "operator": "gzdc", "entity": "GZ-DC-HOT"}
    assert alert.value == pytest.approx(1.6)
    assert "every 1d bucket for 7 days" in alert.summary
    deliver_pending(conn, day8)
    (req,) = receiver.delivered
    assert req.body["alerts"][0]["scope"]["entity"] == "GZ-DC-HOT"

    # evaluated before day 7 is complete, the hot one has only 6 days of evidence: nothing fires
    evaluate(
        conn,
        day8 - timedelta(hours=1),
        rules=[
            Rule(
                id="pue-early",
                kind="threshold",
                indicator="dc_pue",
                each="entity",
                entity_metric="dc_energy_it_kwh",
                comparator=">",
                value=1.5,
                window="7d",
            )
        ],
    )
    assert [a.rule_id for a in list_alerts(conn, "all")] == ["dc-pue-above-1.5-7d"]
