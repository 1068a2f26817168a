"""Several schedulers against one database: each interval's evaluation runs once, whoever gets there first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from core.settings import Settings
from infrawatch.scheduler import Scheduler, interval_bucket, lock_key

RULES = """rules:
  - {id: stale-traffic, kind: stale, metric: traffic_mobile_gb}
  - {id: quality-5pct, kind: quality, limit: 0.05}
"""


def _settings(tmp_path: Path, every: float = 60) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return Settings(alerts_rules_file=rules, alerts_evaluate_interval_s=every)


def _evaluations(conn: psycopg.Connection) -> list[tuple[str, datetime, int, int]]:
    """(rule, interval, evaluations in that interval, distinct runners)."""
    rows = conn.execute(
        "SELECT rule_id, interval_start, count(*), count(DISTINCT runner) FROM alert_evaluation"
        " GROUP BY 1, 2 ORDER BY 2, 1"
    ).fetchall()
    conn.commit()
    return [(r, t, int(n), int(k)) for r, t, n, k in rows]


def test_second_scheduler_skips_an_interval_the_first_already_evaluated(
    db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    a = Scheduler(db_url, settings, runner="a")
    b = Scheduler(db_url, settings, runner="b")
    a.prepare()
    now = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
    assert a.run("evaluate", now) is True
    assert b.run("evaluate", now + timedelta(seconds=20)) is False  # same minute: already done
    assert a.run("evaluate", now + timedelta(seconds=25)) is False
    assert b.run("evaluate", now + timedelta(seconds=30)) is True  # next minute: b's turn
    minute = interval_bucket(now, 60)
    assert _evaluations(conn) == [
        ("quality-5pct", minute, 1, 1),
        ("stale-traffic", minute, 1, 1),
        ("quality-5pct", minute + timedelta(minutes=1), 1, 1),
        ("stale-traffic", minute + timedelta(minutes=1), 1, 1),
    ]


def test_evaluation_waits_while_another_scheduler_holds_the_lock(
    db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    a = Scheduler(db_url, _settings(tmp_path), runner="a")
    a.prepare()
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (lock_key("evaluate"),))  # another scheduler evaluating
        assert a.run("evaluate", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)) is False
        other.execute("SELECT pg_advisory_unlock(%s)", (lock_key("evaluate"),))
    assert a.run("evaluate", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)) is True


def test_two_scheduler_processes_evaluate_each_rule_once_per_interval(
    db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    env = {
        **os.environ,
        "INFRAWATCH_DATABASE_URL": db_url,
        "INFRAWATCH_ALERTS_EVALUATE_INTERVAL_S": "1",
        "INFRAWATCH_ALERTS_RULES_FILE": str(tmp_path / "rules.yaml"),
        "INFRAWATCH_LOG_LEVEL": "WARNING",
    }
    procs = [
        subprocess.Popen([sys.executable, "-m", "infrawatch.scheduler"], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            intervals = {t for _, t, _, _ in _evaluations(conn)}
            if len(intervals) >= 5:
                break
            assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs if p.stderr]
            time.sleep(0.3)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(20) for p in procs]
    assert codes == [0, 0]
    rows = _evaluations(conn)
    intervals = {t for _, t, _, _ in rows}
    assert len(intervals) >= 5
    assert all(n == 1 for _, _, n, _ in rows), rows  # never twice in one interval
    assert {r for r, _, _, _ in rows} == {"stale-traffic", "quality-5pct"}
    assert len(rows) == 2 * len(intervals)  # both rules in every evaluated interval


def test_background_scheduler_evaluates_at_start_and_shuts_down(
    db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    from infrawatch.scheduler import start_background

    handle = start_background(db_url, _settings(tmp_path))
    try:
        deadline = time.monotonic() + 20
        while not _evaluations(conn) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        handle.shutdown()
    assert {r for r, _, _, _ in _evaluations(conn)} == {"stale-traffic", "quality-5pct"}
    job = conn.execute("SELECT runner, finished_at IS NOT NULL, last_error FROM scheduler_run WHERE job = 'evaluate'")
    assert job.fetchone() == (handle.runner, True, None)


def test_maintenance_makes_partitions_ahead_and_the_alerts_log_job_prunes_old_evaluations(
    db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    s = Scheduler(db_url, _settings(tmp_path), runner="m")
    old = datetime(2026, 1, 1, tzinfo=UTC)
    conn.execute(
        "INSERT INTO alert_evaluation (rule_id, interval_start, evaluated_at, runner) VALUES ('x', %s, %s, 'm')",
        (old, old),
    )
    conn.commit()
    assert s.run("maintenance", old + timedelta(days=31)) is True
    assert s.run("maintenance", old + timedelta(days=31, minutes=1)) is False  # same 6-hour interval: done already
    assert conn.execute("SELECT count(*) FROM alert_evaluation").fetchone() == (1,)  # the alerts' own job prunes
    assert s.run("alerts-log", old + timedelta(days=31)) is True
    assert conn.execute("SELECT count(*) FROM alert_evaluation").fetchone() == (0,)  # older than 30 days
    uses_partitions = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'observation_point'::regclass)"
    ).fetchone()
    if uses_partitions and uses_partitions[0]:
        assert conn.execute("SELECT to_regclass('observation_y2026m03') IS NOT NULL").fetchone() == (True,)
