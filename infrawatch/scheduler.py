"""The scheduler: APScheduler runs the periodic jobs each layer declares (alerts: evaluate, deliver, prune the
log; metrics: rollups; storage: partitions; bulletins: the closed periods' bulletins).

Several processes may run it against one database. Each job run first takes a PostgreSQL advisory lock
(pg_try_advisory_lock on its own connection, so overlapping runs never happen) and, for jobs run once per
interval, claims the current interval in `scheduler_run` with an atomic UPDATE — so each interval runs once
in total, whichever process gets there first.
"""

from __future__ import annotations

import logging
import signal
import threading
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from alerts.engine import default_runner
from core.jobs import Job, JobRun
from core.settings import Settings, get_settings
from storage.db import connect

log = logging.getLogger(__name__)

_LOCK_BASE = 7_305_119_040  # advisory lock keys: this + a number per job name (storage/migrate.py uses ...001)


def layer_jobs(settings: Settings) -> list[Job]:
    """Every layer's jobs, in the order they first run."""
    import alerts.jobs
    import bulletins.jobs
    import metrics.jobs
    import storage.jobs

    return [
        *alerts.jobs.jobs(settings),
        *metrics.jobs.jobs(settings),
        *storage.jobs.jobs(settings),
        *bulletins.jobs.jobs(settings),
    ]


def _prepare_layers(conn: psycopg.Connection, settings: Settings) -> None:
    import alerts.jobs

    alerts.jobs.prepare(conn, settings)


def lock_key(job: str) -> int:
    """The advisory lock of a job: stable across processes and releases (from its name)."""
    return _LOCK_BASE + zlib.crc32(job.encode()) % 1_000_000


def interval_bucket(now: datetime, interval_s: float) -> datetime:
    """Start of the interval `now` falls in (intervals aligned on the Unix epoch)."""
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - (epoch % interval_s), UTC)


def claim_interval(conn: psycopg.Connection, job: str, bucket: datetime, runner: str, now: datetime) -> bool:
    """Atomically claim `bucket` for `job`; False when this or a later interval was already claimed."""
    row = conn.execute(
        "INSERT INTO scheduler_run (job, bucket, runner, started_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (job) DO UPDATE SET bucket = EXCLUDED.bucket, runner = EXCLUDED.runner,"
        " started_at = EXCLUDED.started_at, finished_at = NULL, last_error = NULL"
        " WHERE scheduler_run.bucket < EXCLUDED.bucket RETURNING job",
        (job, bucket, runner, now),
    ).fetchone()
    return row is not None


class Scheduler:
    """The periodic jobs; `start()` runs them in a background thread (or blocks with blocking=True)."""

    def __init__(
        self,
        database_url: str,
        settings: Settings | None = None,
        *,
        blocking: bool = False,
        runner: str | None = None,
        jobs: Iterable[Job] | None = None,
        only: Iterable[str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.settings = settings or get_settings()
        self.runner = runner or default_runner()
        wanted = set(only) if only is not None else None
        self.jobs = {
            j.name: j
            for j in (layer_jobs(self.settings) if jobs is None else jobs)
            if wanted is None or j.name in wanted
        }
        self._scheduler: BaseScheduler = (
            BlockingScheduler(timezone=UTC) if blocking else BackgroundScheduler(timezone=UTC)
        )
        defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": self.settings.scheduler_misfire_grace_s}
        first = datetime.now(UTC)
        for job in self.jobs.values():
            self._scheduler.add_job(
                self.run,
                "interval",
                args=(job.name,),
                seconds=job.every_s,
                id=job.name,
                name=job.name,
                next_run_time=first + timedelta(seconds=job.first_delay_s),
                replace_existing=True,
                **defaults,
            )

    # --- life ---

    def prepare(self) -> None:
        """What the layers load before the first run (the alert rules and channels files)."""
        with connect(self.database_url, application_name="infrawatch-scheduler") as conn:
            _prepare_layers(conn, self.settings)

    def start(self) -> None:
        try:
            self.prepare()
        except Exception:
            log.exception(
                "could not load alert rules/channels; using what the database holds",
                extra={"event": "scheduler.prepare_failed"},
            )
        log.info(
            "scheduler starting",
            extra={"event": "scheduler.start", "runner": self.runner, "jobs": sorted(self.jobs)},
        )
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        log.info("scheduler stopped", extra={"event": "scheduler.stop", "runner": self.runner})

    # --- runs ---

    def run(self, name: str, now: datetime | None = None) -> bool:
        """Run job `name` if this process gets its advisory lock (and, for a once-per-interval job, the
        interval's claim); True when it ran without error."""
        job = self.jobs[name]
        now = now or datetime.now(UTC)
        bucket = interval_bucket(now, job.every_s) if job.once_per_interval else now
        try:
            with connect(self.database_url, autocommit=True, application_name="infrawatch-scheduler") as lock:
                got = lock.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),)).fetchone()
                if not got or not got[0]:
                    log.debug("job busy elsewhere", extra={"event": "scheduler.busy", "job": name})
                    return False
                try:
                    return self._run_claimed(lock, job, now, bucket)
                finally:
                    lock.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))
        except psycopg.OperationalError as exc:
            log.warning(
                "database unreachable; job skipped",
                extra={"event": "scheduler.db_down", "job": name, "error": str(exc)},
            )
            return False

    def _run_claimed(self, lock: psycopg.Connection, job: Job, now: datetime, bucket: datetime) -> bool:
        if job.once_per_interval and not claim_interval(lock, job.name, bucket, self.runner, now):
            log.debug("interval already run", extra={"event": "scheduler.claimed", "job": job.name})
            return False
        error: str | None = None
        try:
            with connect(self.database_url, application_name=f"infrawatch-{job.name}") as conn:
                job.run(conn, JobRun(at=now, bucket=bucket, runner=self.runner))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduled job failed", extra={"event": "scheduler.job_failed", "job": job.name})
        if job.once_per_interval:
            lock.execute(
                "UPDATE scheduler_run SET finished_at = now(), last_error = %s WHERE job = %s AND bucket = %s",
                (error, job.name, bucket),
            )
        return error is None


def start_background(database_url: str, settings: Settings | None = None) -> Scheduler:
    """Start the scheduler in a background thread (inside `infrawatch serve`); call .shutdown() to stop."""
    scheduler = Scheduler(database_url, settings)
    scheduler.start()
    return scheduler


def run_foreground(database_url: str, settings: Settings | None = None) -> None:
    """Run the scheduler until SIGTERM or SIGINT (`infrawatch scheduler`)."""
    scheduler = Scheduler(database_url, settings, blocking=False)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal received; stopping", extra={"event": "scheduler.signal", "signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)


def main() -> None:  # pragma: no cover - `python -m infrawatch.scheduler`, a light entry point without the CLI
    from core.logs import setup_logging
    from storage import database_url

    settings = get_settings()
    setup_logging(settings.log_level, json_lines=settings.log_json)
    run_foreground(database_url())


if __name__ == "__main__":  # pragma: no cover
    main()
