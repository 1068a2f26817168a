"""Rules, alerts and channels in the database: the rules file vs admin changes, acknowledgement, listing,
and the `infrawatch alerts` commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from alerts.engine import evaluate
from alerts.rules import Rule
from alerts.store import (
    acknowledge,
    alert_history,
    delete_rule,
    get_rule,
    list_alerts,
    list_channels,
    list_rules,
    load_channels_file,
    sync_rules_file,
    upsert_rule,
)
from ingest.pipeline import IngestPipeline

RULES = """rules:
  - {id: stale-traffic, kind: stale, metric: traffic_mobile_gb, title: From the file}
  - {id: quality-5pct, kind: quality, limit: 0.05}
"""


def test_rules_file_adds_and_updates_but_never_overrides_an_admin_change(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    extra = tmp_path / "extra.yaml"
    extra.write_text(RULES + "  - {id: stale-extra, kind: stale, metric: users_5g}\n")
    assert sync_rules_file(conn, extra) == 3
    assert sync_rules_file(conn, path) == 0  # unchanged: nothing written (stale-extra, gone from the file, is disabled)
    assert [r.id for r in list_rules(conn) if not r.enabled] == ["stale-extra"]  # unchanged: nothing written
    # an admin changes one rule and deletes the other
    assert (
        upsert_rule(conn, Rule(id="stale-traffic", kind="stale", metric="traffic_mobile_gb", title="Admin's")) is False
    )
    assert delete_rule(conn, "quality-5pct") is True
    assert delete_rule(conn, "quality-5pct") is False
    sync_rules_file(conn, path)  # e.g. the scheduler restarts
    assert [(r.id, r.title) for r in list_rules(conn)] == [("stale-extra", ""), ("stale-traffic", "Admin's")]
    assert get_rule(conn, "quality-5pct") is None
    # re-adding a deleted rule through the API counts as creating it
    assert upsert_rule(conn, Rule(id="quality-5pct", kind="quality", limit=0.1)) is True
    # a rule dropped from the file is disabled
    path.write_text("rules: []\n")
    assert upsert_rule(conn, Rule(id="new-one", kind="quality", limit=0.2)) is True
    sync_rules_file(conn, path)
    assert {r.id for r in list_rules(conn, enabled_only=True)} == {"stale-traffic", "quality-5pct", "new-one"}


def _firing_stale_alert(conn: psycopg.Connection, repeat: str = "0") -> datetime:
    upsert_rule(conn, Rule(id="stale-traffic", kind="stale", metric="traffic_mobile_gb", repeat=repeat))
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    item = {"ts": ts.isoformat(), "region": "360400", "metric": "traffic_mobile_gb", "value": 7}
    IngestPipeline().submit_items(conn, [item], source="test", operator="cucc")
    now = datetime.now(UTC)
    evaluate(conn, now)
    return now


def test_acknowledging_records_who_and_stops_reminders(conn: psycopg.Connection) -> None:
    now = _firing_stale_alert(conn, repeat="1h")
    (alert,) = list_alerts(conn)
    acked = acknowledge(conn, alert.id, "duty-officer")
    assert acked is not None and acked.acknowledged_by == "duty-officer" and acked.acknowledged_at is not None
    assert acknowledge(conn, alert.id, "someone-else").acknowledged_by == "duty-officer"  # type: ignore[union-attr]
    assert acknowledge(conn, 999_999, "x") is None
    evaluate(conn, now + timedelta(hours=2))  # a reminder would be due
    reminders = conn.execute("SELECT count(*) FROM alert_event WHERE event = 'reminder'").fetchone()
    assert reminders == (0,)
    assert [e["event"] for e in alert_history(conn, alert.id)] == ["pending", "firing", "acknowledged"]


def test_unacknowledged_alert_is_reminded_after_the_repeat_interval(conn: psycopg.Connection) -> None:
    now = _firing_stale_alert(conn, repeat="1h")
    evaluate(conn, now + timedelta(minutes=59))
    evaluate(conn, now + timedelta(minutes=61))
    rows = conn.execute("SELECT event FROM alert_event ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["pending", "firing", "reminder"]


def test_list_alerts_filters_by_state_and_operator(conn: psycopg.Connection) -> None:
    now = _firing_stale_alert(conn)
    assert [a.scope["operator"] for a in list_alerts(conn, "firing", operator="cucc")] == ["cucc"]
    assert list_alerts(conn, "firing", operator="cmcc") == []
    assert list_alerts(conn, "resolved") == []
    item = {"ts": now.isoformat(), "region": "360400", "metric": "traffic_mobile_gb", "value": 8}
    IngestPipeline().submit_items(conn, [item], source="test", operator="cucc")
    evaluate(conn, now + timedelta(minutes=1))
    assert list_alerts(conn) == [] and len(list_alerts(conn, "resolved")) == 1 and len(list_alerts(conn, "all")) == 1
    with pytest.raises(ValueError, match="unknown alert state"):
        list_alerts(conn, "open")


def test_deleting_a_rule_resolves_its_alerts_quietly(conn: psycopg.Connection) -> None:
    now = _firing_stale_alert(conn)
    delete_rule(conn, "stale-traffic")
    evaluate(conn, now + timedelta(minutes=1))
    assert list_alerts(conn) == [] and len(list_alerts(conn, "resolved")) == 1
    assert conn.execute("SELECT count(*) FROM notification").fetchone() == (0,)


def test_channels_file_refuses_secrets_in_the_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    good = tmp_path / "channels.yaml"
    good.write_text(
        "channels:\n"
        "  - {name: ops-ding, kind: dingtalk, url_env: IW_DING_URL, secret_env: IW_DING_SECRET}\n"
        "  - {name: noc-mail, kind: email, host: smtp.example.org, port: 587, starttls: true, to: [noc@example.org]}\n"
    )
    assert load_channels_file(conn, good) == 2
    assert [(c.name, c.kind) for c in list_channels(conn)] == [("noc-mail", "email"), ("ops-ding", "dingtalk")]
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels:\n  - {name: x, kind: dingtalk, url: http://x, secret: SECabc}\n")
    with pytest.raises(ValueError, match="put secrets in environment variables"):
        load_channels_file(conn, bad)


def test_alerts_commands_list_ack_and_rules(db_url: str, conn: psycopg.Connection, tmp_path: Path) -> None:
    from infrawatch.cli import app

    _firing_stale_alert(conn)
    (alert,) = list_alerts(conn)
    runner = CliRunner()
    listed = runner.invoke(app, ["alerts", "list"])
    assert listed.exit_code == 0 and "stale-traffic" in listed.output
    acked = runner.invoke(app, ["alerts", "ack", str(alert.id), "--by", "ops"])
    assert acked.exit_code == 0 and "acknowledged by ops" in acked.output
    missing = runner.invoke(app, ["alerts", "ack", "424242"])
    assert missing.exit_code == 1
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    rules = runner.invoke(app, ["alerts", "rules", "--load", str(path)])
    assert rules.exit_code == 0 and "quality-5pct" in rules.output
