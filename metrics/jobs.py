"""The metrics layer's periodic job: bring the rollups up to date (and the planner's statistics after a
large rebuild)."""

from __future__ import annotations

import logging

import psycopg

from core.jobs import Job, JobRun
from core.settings import Settings
from metrics.rollups import refresh_rollups
from storage.analyze import ROLLUP_TABLES, analyze_changed

log = logging.getLogger(__name__)


def jobs(settings: Settings) -> list[Job]:
    def run_rollups(conn: psycopg.Connection, run: JobRun) -> None:
        n = refresh_rollups(conn)
        conn.commit()
        if n:  # a rebuild after a backfill writes many rows: keep the planner's statistics current
            analyze_changed(conn, ROLLUP_TABLES)
        log.info("rollups refreshed", extra={"event": "scheduler.rollups", "refreshed": n})

    return [Job("rollups", settings.rollup_interval_s, run_rollups, first_delay_s=5)]
