"""The storage layer's periodic job: observation partitions made ahead, and dropped past the retention."""

from __future__ import annotations

import logging

import psycopg

from core.jobs import Job, JobRun
from core.settings import Settings
from storage.maintenance import create_partitions_ahead, drop_old_partitions

log = logging.getLogger(__name__)


def jobs(settings: Settings) -> list[Job]:
    def run_maintenance(conn: psycopg.Connection, run: JobRun) -> None:
        made = create_partitions_ahead(conn, settings.partitions_months_ahead, now=run.at)
        dropped = drop_old_partitions(conn, settings.retention_days, now=run.at) if settings.retention_days else 0
        conn.commit()
        log.info(
            "maintenance done",
            extra={"event": "scheduler.maintenance", "partitions_created": made, "partitions_dropped": dropped},
        )

    return [Job("maintenance", settings.maintenance_interval_s, run_maintenance)]
