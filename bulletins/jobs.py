"""The bulletins' periodic job: produce each closed month's and quarter's bulletin once, and send it."""

from __future__ import annotations

import psycopg

from bulletins.schedule import run_due_bulletins
from core.jobs import Job, JobRun
from core.settings import Settings


def jobs(settings: Settings) -> list[Job]:
    def run_bulletins(conn: psycopg.Connection, run: JobRun) -> None:
        run_due_bulletins(conn, run.at, settings, runner=run.runner)

    return [Job("bulletins", settings.bulletin_interval_s, run_bulletins, first_delay_s=30)]
