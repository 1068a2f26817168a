"""The alerting layer's periodic jobs: evaluate the rules, deliver notifications, prune the evaluation log;
and what the scheduler loads before its first run (the rules file, the channels file)."""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg

from alerts.engine import evaluate
from alerts.notifiers import deliver_pending
from alerts.rules import DEFAULT_RULES_FILE
from alerts.store import load_channels_file, sync_rules_file
from core.jobs import Job, JobRun
from core.settings import Settings

log = logging.getLogger(__name__)


def prepare(conn: psycopg.Connection, settings: Settings) -> None:
    """Load the rules file (and the channels file, if configured) into the database, in one transaction."""
    with conn.transaction():
        n = sync_rules_file(conn, settings.alerts_rules_file or DEFAULT_RULES_FILE)
        channels = load_channels_file(conn, settings.alerts_channels_file) if settings.alerts_channels_file else 0
    log.info("alert rules loaded", extra={"event": "alerts.prepared", "rules_written": n, "channels": channels})


def jobs(settings: Settings) -> list[Job]:
    # evaluate and deliver_pending own their transactions (one per rule, one per send): the scheduler
    # hands them an idle connection, so each step commits as it ends
    def run_evaluation(conn: psycopg.Connection, run: JobRun) -> None:
        evaluate(conn, run.at, runner=run.runner, interval_start=run.bucket)

    def run_delivery(conn: psycopg.Connection, run: JobRun) -> None:
        deliver_pending(conn, run.at)

    def prune_log(conn: psycopg.Connection, run: JobRun) -> None:
        cutoff = run.at - timedelta(days=settings.alerts_log_retention_days)
        with conn.transaction():
            conn.execute("DELETE FROM alert_evaluation WHERE evaluated_at < %s", (cutoff,))
            conn.execute("DELETE FROM notification WHERE state = 'sent' AND sent_at < %s", (cutoff,))

    return [
        Job("evaluate", settings.alerts_evaluate_interval_s, run_evaluation),
        Job("deliver", settings.alerts_deliver_interval_s, run_delivery, once_per_interval=False),
        Job("alerts-log", settings.maintenance_interval_s, prune_log),
    ]
