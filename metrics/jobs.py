"""The metrics layer's periodic jobs: bring the rollups up to date (and the planner's statistics after a
large rebuild), republish the pending tail so that the boards read the buckets still pending rollup as
the API does, and republish the reconciliation gaps the explorer shows."""

from __future__ import annotations

import logging

import psycopg

from core.jobs import Job, JobRun
from core.settings import Settings
from metrics.reconciliation import publish_reconciliation
from metrics.rollups import refresh_pending, refresh_rollups
from storage.analyze import ROLLUP_TABLES, analyze_changed

log = logging.getLogger(__name__)


def jobs(settings: Settings) -> list[Job]:
    # refresh_rollups and refresh_pending own their transactions: on the scheduler's idle connection
    # each commits what it wrote
    def run_rollups(conn: psycopg.Connection, run: JobRun) -> None:
        n = refresh_rollups(conn)
        if n:  # a rebuild after a backfill writes many rows: keep the planner's statistics current
            analyze_changed(conn, ROLLUP_TABLES)
        log.info("rollups refreshed", extra={"event": "scheduler.rollups", "refreshed": n})

    def run_pending(conn: psycopg.Connection, run: JobRun) -> None:
        refresh_pending(conn)

    def run_reconciliation(conn: psycopg.Connection, run: JobRun) -> None:
        n = publish_reconciliation(conn)
        log.info("reconciliation published", extra={"event": "scheduler.reconciliation", "rows": n})

    return [
        Job("rollups", settings.rollup_interval_s, run_rollups, first_delay_s=5),
        Job("pending", settings.pending_interval_s, run_pending, first_delay_s=20),
        Job("reconciliation", settings.rollup_interval_s, run_reconciliation, first_delay_s=30),
    ]
