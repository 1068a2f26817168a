"""Transaction etiquette (docs/architecture.md): nothing commits a caller's connection. The alert evaluation,
notification delivery and a bulletin's storage and delivery, run inside a transaction the test opened,
write only into it: once it is rolled back, the database holds what it held before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.engine import evaluate
from alerts.notifiers import deliver_pending
from alerts.rules import Rule
from alerts.store import Channel, upsert_channel, upsert_rule
from bulletins import build_bulletin, parse_period
from bulletins.delivery import deliver_bulletins, queue_deliveries
from bulletins.files import BulletinFile
from bulletins.render_xlsx import render_xlsx
from bulletins.store import save_bulletin
from ingest.pipeline import IngestPipeline
from metrics import load_targets
from tests.notify_support import WebhookReceiver

TABLES = (
    "alert",
    "alert_event",
    "alert_evaluation",
    "alert_group",
    "notification",
    "target_progress",
    "target_trajectory",
    "bulletin",
    "bulletin_file",
    "bulletin_delivery",
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _counts(url: str) -> dict[str, int]:
    """Rows per table as another session sees them (what is committed)."""
    with psycopg.connect(url) as other:
        return {t: int(other.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]


def _setup(conn: psycopg.Connection, receiver: WebhookReceiver) -> datetime:
    """Committed before the test's transaction: the targets, a stale rule with a silent feed, a channel."""
    load_targets(conn)
    upsert_rule(conn, Rule(id="stale-traffic", kind="stale", metric="traffic_mobile_gb", title="Traffic feed silent"))
    upsert_channel(conn, Channel(name="hook", kind="webhook", config={"url": receiver.url}))
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    item = {"ts": ts.isoformat(), "region": "360100", "metric": "traffic_mobile_gb", "value": 42}
    IngestPipeline().submit_items(conn, [item], source="test", operator="cmcc")
    conn.commit()
    return datetime.now(UTC)


def test_alert_evaluation_and_a_bulletins_storage_write_only_into_the_callers_transaction(
    conn: psycopg.Connection, db_url: str, receiver: WebhookReceiver
) -> None:
    now = _setup(conn, receiver)
    before = _counts(db_url)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    conn.execute("SELECT 1")  # the caller's transaction: a commit anywhere below would end it
    report = evaluate(conn, now)
    assert report.fired == 1 and report.notifications == 1
    # a rule that cannot be judged (target rules without progress) is recorded, its savepoint alone undone
    broken = Rule(id="target-unjudged", kind="target", target="jx-2023-5g-new")
    assert evaluate(conn, now, rules=[broken], refresh_targets=False).errors.keys() == {"target-unjudged"}
    assert deliver_pending(conn, now).sent == 1
    period = parse_period("2023-09")
    b = build_bulletin(conn, period)
    bid = save_bulletin(conn, b, [BulletinFile("xlsx", "bulletin.xlsx", render_xlsx(b))], created_by="test")
    assert bid is not None and queue_deliveries(conn, bid) == 1
    assert deliver_bulletins(conn, now) == (1, 0)
    assert len(receiver.requests) == 2  # the sends happened; their records are the caller's to keep

    inside = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]
    grew = {t for t in TABLES if inside[t] > before[t]}
    assert grew == set(TABLES) - {"target_trajectory"}, grew  # trajectories: rewritten, unchanged
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert _counts(db_url) == before  # nothing committed so far

    conn.rollback()
    assert _counts(db_url) == before


def test_on_an_idle_connection_each_step_commits_as_it_ends(
    conn: psycopg.Connection, db_url: str, receiver: WebhookReceiver
) -> None:
    """The scheduler's jobs hand an idle connection: the evaluation's and the delivery's steps commit."""
    now = _setup(conn, receiver)
    before = _counts(db_url)
    evaluate(conn, now)
    assert deliver_pending(conn, now).sent == 1
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    after = _counts(db_url)
    assert {t for t in TABLES if after[t] > before[t]} == {
        "alert",
        "alert_event",
        "alert_evaluation",
        "alert_group",
        "notification",
        "target_progress",
    }
    with psycopg.connect(db_url) as other:
        assert other.execute("SELECT state FROM notification").fetchall() == [("sent",)]
