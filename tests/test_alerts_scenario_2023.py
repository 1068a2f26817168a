"""The 2023 scenario evaluated now, years after its last figure (every feed silent): at most one firing alert
per silent feed plus the targets at fault, and each channel gets at most one message per group. The figures
are recorded in docs/alerts.md (*The 2023 scenario evaluated now*)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from alerts.engine import evaluate
from alerts.notifiers import deliver_pending
from alerts.store import Channel, list_alerts, sync_rules_file, upsert_channel
from collectors.csvfile import load_csv
from metrics import evaluate_targets, load_targets
from simulators.generate import scenario_window
from simulators.run import backfill
from simulators.scenario import load_scenario
from simulators.sinks.csvfile import CsvSink
from tests.notify_support import SmtpSink, WebhookReceiver
from tests.test_simulators_integration import TEST_VARIANT


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


def test_the_2023_scenario_evaluated_now_raises_one_alert_per_silent_feed_and_one_message_per_group(
    conn: psycopg.Connection, tmp_path: Path, receiver: WebhookReceiver, smtp: SmtpSink
) -> None:
    sc = load_scenario("jiangxi-2023", TEST_VARIANT)
    window = scenario_window(sc)
    backfill(sc, CsvSink(sc, tmp_path / "csv"), window.start_us, window.end_us)
    for path in sorted((tmp_path / "csv").iterdir()):
        load_csv(conn, path, operator=None, operator_column_trusted=True)
    load_targets(conn)
    sync_rules_file(conn)  # the shipped rules
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url + "/hook"}))
    upsert_channel(conn, Channel(name="ding", kind="dingtalk", config={"url": receiver.url + "/ding"}))
    upsert_channel(conn, Channel(name="wecom", kind="wecom", config={"url": receiver.url + "/wecom"}))
    upsert_channel(
        conn, Channel(name="mail", kind="email", config={"host": "127.0.0.1", "port": smtp.port, "to": ["noc@x.org"]})
    )

    now = datetime.now(UTC)
    evaluate(conn, now)
    deliver_pending(conn, now)

    firing = list_alerts(conn, limit=100_000)
    feeds = conn.execute("SELECT count(DISTINCT (operator, metric)) FROM feed_freshness").fetchone()
    assert feeds is not None
    at_fault = [p for p in evaluate_targets(conn, now) if p.status in ("at_risk", "off_track", "missed")]
    by_kind = Counter(a.kind for a in firing)
    assert by_kind["stale"] == feeds[0]  # one per silent feed (every feed is silent by years)
    assert by_kind["target"] == len(at_fault)
    assert len(firing) <= feeds[0] + len(at_fault)
    # the targets were missed long before their rules first looked: recorded, never notified
    assert all(a.quiet for a in firing if a.kind == "target")

    messages = conn.execute("SELECT channel, rule_id, group_key FROM notification").fetchall()
    per_group = Counter(messages)
    assert max(per_group.values()) == 1  # each channel: at most one message per group
    groups = {(r, g) for _, r, g in messages}
    operators = {a.scope["operator"] for a in firing if a.kind == "stale"}
    assert groups == {("stale-feeds", f"operator={op}") for op in operators}  # one message per silent operator
    by_path = Counter(r.path for r in receiver.delivered)
    assert by_path == {"/hook": len(groups), "/ding": len(groups), "/wecom": len(groups)}
    assert len(smtp.messages) == len(groups)

    # still silent a group interval later, and an hour later: nothing new to say
    for later in (now + timedelta(minutes=6), now + timedelta(hours=1)):
        evaluate(conn, later)
        deliver_pending(conn, later)
    assert len(receiver.delivered) == 3 * len(groups)

    print(
        f"\n2023 scenario now: {len(firing)} firing ({by_kind['stale']} stale = silent feeds, "
        f"{by_kind['target']} target, {by_kind['threshold']} threshold, {by_kind['quality']} quality); "
        f"targets at fault {len(at_fault)} ({Counter(p.status for p in at_fault)}); "
        f"messages per channel {len(groups)} for {len(operators)} silent operators"
    )
