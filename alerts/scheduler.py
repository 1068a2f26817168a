"""The scheduler: APScheduler jobs for alert evaluation, notification delivery, rollups and partition upkeep.

Several processes may run it against one database. Each job run first takes a PostgreSQL advisory lock
(pg_try_advisory_lock on its own connection, so overlapping runs never happen) and, for interval jobs,
claims the current interval in `scheduler_run` with an atomic UPDATE — so each interval runs once in total,
whichever process gets there first.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.engine import default_runner, evaluate
from alerts.notifiers import deliver_pending
from alerts.rules import DEFAULT_RULES_FILE
from alerts.store import load_channels_file, sync_rules_file
from storage.analyze import ROLLUP_TABLES, analyze_changed

log = logging.getLogger(__name__)

_LOCK_BASE = 7_305_119_040  # advisory lock keys: this + job index (storage/migrate.py uses ...001)
JOBS = ("evaluate", "deliver", "rollups", "maintenance", "bulletins")


class SchedulerSettings(BaseSettings):
    """INFRAWATCH_ALERTS_* settings of the scheduler."""

    model_config = SettingsConfigDict(env_prefix="INFRAWATCH_ALERTS_", env_file=".env", extra="ignore")

    evaluate_interval_s: float = 60
    deliver_interval_s: float = 15
    rollup_interval_s: float = 300
    #: how often the pending tail (buckets changes since the last rollup refresh can reach) is republished
    pending_interval_s: float = 30
    maintenance_interval_s: float = 6 * 3600
    months_ahead: int = 3
    #: drop observation partitions older than this many days; 0 keeps everything
    retention_days: int = 0
    #: keep alert_evaluation rows and sent notifications this long
    log_retention_days: int = 30
    rules_file: Path = DEFAULT_RULES_FILE
    channels_file: Path | None = None
    #: a run may start this late and still run (APScheduler misfire_grace_time)
    misfire_grace_s: int = 30
    #: how often to look for a closed month or quarter whose bulletin is due (bulletins/)
    bulletin_interval_s: float = 3600


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


class AlertScheduler:
    """The periodic jobs; `start()` runs them in a background thread (or blocks with blocking=True)."""

    def __init__(
        self,
        database_url: str,
        settings: SchedulerSettings | None = None,
        *,
        blocking: bool = False,
        runner: str | None = None,
        rollups: bool = True,
        maintenance: bool = True,
        bulletins: bool = True,
    ) -> None:
        self.database_url = database_url
        self.settings = settings or SchedulerSettings()
        self.runner = runner or default_runner()
        self._scheduler: BaseScheduler = (
            BlockingScheduler(timezone=UTC) if blocking else BackgroundScheduler(timezone=UTC)
        )
        s = self.settings
        job_defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": s.misfire_grace_s}
        first = datetime.now(UTC)
        self._add("evaluate", self.run_evaluation, s.evaluate_interval_s, first, job_defaults)
        self._add("deliver", self.run_delivery, s.deliver_interval_s, first, job_defaults)
        if rollups:
            self._add("rollups", self.run_rollups, s.rollup_interval_s, first + timedelta(seconds=5), job_defaults)
            self._add("pending", self.run_pending, s.pending_interval_s, first + timedelta(seconds=20), job_defaults)
        if maintenance:
            self._add("maintenance", self.run_maintenance, s.maintenance_interval_s, first, job_defaults)
        if bulletins:
            later = first + timedelta(seconds=30)
            self._add("bulletins", self.run_bulletins, s.bulletin_interval_s, later, job_defaults)

    def _add(self, job: str, fn: Callable[[], Any], every_s: float, first: datetime, defaults: dict[str, Any]) -> None:
        self._scheduler.add_job(
            fn, "interval", seconds=every_s, id=job, name=job, next_run_time=first, replace_existing=True, **defaults
        )

    # --- life ---

    def prepare(self) -> None:
        """Load the rules file (and channels file, if configured) into the database."""
        with psycopg.connect(self.database_url, application_name="infrawatch-scheduler") as conn:
            n = sync_rules_file(conn, self.settings.rules_file)
            channels = load_channels_file(conn, self.settings.channels_file) if self.settings.channels_file else 0
        log.info(
            "alert rules loaded",
            extra={"event": "scheduler.prepared", "rules_written": n, "channels": channels, "runner": self.runner},
        )

    def start(self) -> None:
        try:
            self.prepare()
        except Exception:
            log.exception(
                "could not load alert rules/channels; using what the database holds",
                extra={"event": "scheduler.prepare_failed"},
            )
        log.info("scheduler starting", extra={"event": "scheduler.start", "runner": self.runner})
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        log.info("scheduler stopped", extra={"event": "scheduler.stop", "runner": self.runner})

    # --- jobs ---

    def _exclusive(
        self,
        job: str,
        interval_s: float | None,
        fn: Callable[[psycopg.Connection, datetime, datetime], Any],
        now: datetime | None = None,
    ) -> bool:
        """Run fn(conn, now, bucket) if this process gets the job's advisory lock (and the interval's claim)."""
        now = now or datetime.now(UTC)
        bucket = interval_bucket(now, interval_s) if interval_s else now
        key = _LOCK_BASE + JOBS.index(job)
        try:
            with psycopg.connect(self.database_url, autocommit=True, application_name="infrawatch-scheduler") as lock:
                got = lock.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if not got or not got[0]:
                    log.debug("job busy elsewhere", extra={"event": "scheduler.busy", "job": job})
                    return False
                try:
                    if interval_s and not claim_interval(lock, job, bucket, self.runner, now):
                        log.debug("interval already run", extra={"event": "scheduler.claimed", "job": job})
                        return False
                    error: str | None = None
                    try:
                        with psycopg.connect(self.database_url, application_name=f"infrawatch-{job}") as conn:
                            fn(conn, now, bucket)
                    except Exception as exc:
                        error = f"{type(exc).__name__}: {exc}"
                        log.exception("scheduled job failed", extra={"event": "scheduler.job_failed", "job": job})
                    if interval_s:
                        lock.execute(
                            "UPDATE scheduler_run SET finished_at = now(), last_error = %s WHERE job = %s AND bucket = %s",
                            (error, job, bucket),
                        )
                    return error is None
                finally:
                    lock.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.OperationalError as exc:
            log.warning(
                "database unreachable; job skipped", extra={"event": "scheduler.db_down", "job": job, "error": str(exc)}
            )
            return False

    def run_evaluation(self, now: datetime | None = None) -> bool:
        def job(conn: psycopg.Connection, at: datetime, bucket: datetime) -> None:
            evaluate(conn, at, runner=self.runner, interval_start=bucket)

        return self._exclusive("evaluate", self.settings.evaluate_interval_s, job, now)

    def run_delivery(self, now: datetime | None = None) -> bool:
        return self._exclusive("deliver", None, lambda conn, at, _b: deliver_pending(conn, at), now)

    def run_rollups(self, now: datetime | None = None) -> bool:
        def job(conn: psycopg.Connection, at: datetime, bucket: datetime) -> None:
            try:
                from metrics import refresh_rollups
            except ImportError:
                return
            n = refresh_rollups(conn)
            conn.commit()
            if n:  # a rebuild after a backfill writes many rows: keep the planner's statistics current
                analyze_changed(conn, ROLLUP_TABLES)
            log.info("rollups refreshed", extra={"event": "scheduler.rollups", "refreshed": n})

        return self._exclusive("rollups", self.settings.rollup_interval_s, job, now)

    def run_pending(self, now: datetime | None = None) -> bool:
        """Republish the pending tail, so that the boards show the buckets still pending rollup as the API does."""

        def job(conn: psycopg.Connection, at: datetime, bucket: datetime) -> None:
            from metrics.rollups import refresh_pending

            refresh_pending(conn)
            conn.commit()

        return self._exclusive("pending", self.settings.pending_interval_s, job, now)

    def run_maintenance(self, now: datetime | None = None) -> bool:
        s = self.settings

        def job(conn: psycopg.Connection, at: datetime, bucket: datetime) -> None:
            from storage.maintenance import create_partitions_ahead, drop_old_partitions

            made = create_partitions_ahead(conn, s.months_ahead, now=at)
            dropped = drop_old_partitions(conn, s.retention_days, now=at) if s.retention_days else 0
            cutoff = at - timedelta(days=s.log_retention_days)
            conn.execute("DELETE FROM alert_evaluation WHERE evaluated_at < %s", (cutoff,))
            conn.execute("DELETE FROM notification WHERE state = 'sent' AND sent_at < %s", (cutoff,))
            conn.commit()
            log.info(
                "maintenance done",
                extra={"event": "scheduler.maintenance", "partitions_created": made, "partitions_dropped": dropped},
            )

        return self._exclusive("maintenance", s.maintenance_interval_s, job, now)

    def run_bulletins(self, now: datetime | None = None) -> bool:
        """Produce the due month's and quarter's bulletins (once, whichever scheduler claims the interval)."""

        def job(conn: psycopg.Connection, at: datetime, bucket: datetime) -> None:
            try:
                from bulletins.schedule import run_due_bulletins
            except ImportError:
                return
            from infrawatch.settings import get_settings

            run_due_bulletins(conn, at, get_settings(), runner=self.runner)

        return self._exclusive("bulletins", self.settings.bulletin_interval_s, job, now)


def start_background(database_url: str, settings: SchedulerSettings | None = None) -> AlertScheduler:
    """Start the scheduler in a background thread (used inside `infrawatch serve`); call .shutdown() to stop."""
    scheduler = AlertScheduler(database_url, settings)
    scheduler.start()
    return scheduler


def run_foreground(database_url: str, settings: SchedulerSettings | None = None) -> None:
    """Run the scheduler until SIGTERM or SIGINT (`infrawatch scheduler`)."""
    scheduler = AlertScheduler(database_url, settings, blocking=False)
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


def main() -> None:  # pragma: no cover - `python -m alerts.scheduler`, a light entry point without the full CLI
    from infrawatch.logs import setup_logging
    from infrawatch.settings import get_settings
    from storage import database_url

    settings = get_settings()
    setup_logging(settings.log_level, json_lines=settings.log_json)
    run_foreground(database_url())


if __name__ == "__main__":  # pragma: no cover
    main()
