"""INFRAWATCH_TIMEZONE is the plans' time zone: it moves the instant of a naive date in every door (CSV over
the command line here, the parsers and the plan's day boundaries), and a zone with daylight saving is refused
with a clear message. Each case runs in its own process, where the setting is read at start."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

PROBE = (
    "from ingest.timestamps import parse_csv_ts\n"
    "from metrics.timeutil import start_of_day\n"
    "from datetime import date\n"
    "print(parse_csv_ts('2023-06-30'), parse_csv_ts('2023-06'), int(start_of_day(date(2023, 6, 30)).timestamp()))\n"
)


def _probe(zone: str | None) -> list[int]:
    env = {k: v for k, v in os.environ.items() if k != "INFRAWATCH_TIMEZONE"}
    if zone is not None:
        env["INFRAWATCH_TIMEZONE"] = zone
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True, timeout=60)
    return [int(x) for x in out.stdout.split()]


def test_the_setting_moves_the_instant_of_a_naive_date_and_of_a_plan_day() -> None:
    shanghai = _probe(None)
    tokyo = _probe("Asia/Tokyo")
    utc = _probe("UTC")
    midnight_utc = int(datetime(2023, 6, 30, tzinfo=UTC).timestamp())
    assert utc == [midnight_utc * 1_000_000, midnight_utc * 1_000_000, midnight_utc]
    assert shanghai == [
        (midnight_utc - 8 * 3600) * 1_000_000,
        (midnight_utc - 8 * 3600) * 1_000_000,
        midnight_utc - 8 * 3600,
    ]
    assert tokyo[2] == midnight_utc - 9 * 3600


def test_load_csv_reads_naive_dates_in_the_configured_zone(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "utc.csv"
    path.write_text("ts,region,metric,value\n2023-06-30,360100,bs5g_total,10\n")
    env = {**os.environ, "INFRAWATCH_TIMEZONE": "UTC", "INFRAWATCH_LOG_JSON": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "infrawatch", "load-csv", str(path), "--operator", "cmcc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(db_url) as conn:
        (ts,) = conn.execute("SELECT ts FROM observation").fetchone()  # type: ignore[misc]
    assert ts == datetime(2023, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Not/AZone"])
def test_a_zone_with_daylight_saving_or_unknown_is_refused_with_the_reason(zone: str) -> None:
    env = {**os.environ, "INFRAWATCH_TIMEZONE": zone}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"INFRAWATCH_TIMEZONE={zone!r}" in done.stderr
    assert ("daylight saving" if zone == "Europe/Berlin" else "not an IANA time zone") in done.stderr


def test_db_upgrade_records_the_zone_for_the_sql_functions_the_boards_read(pg_server: str) -> None:
    from tests.conftest import RUN_ID, with_dbname

    name = f"iw_tz_{RUN_ID}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(pg_server, name)
    try:
        env = {
            **os.environ,
            "INFRAWATCH_DATABASE_URL": url,
            "INFRAWATCH_TIMEZONE": "UTC",
            "INFRAWATCH_LOG_JSON": "false",
        }
        done = subprocess.run(
            [sys.executable, "-m", "infrawatch", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        with psycopg.connect(url) as conn:  # a new session, as Grafana's
            assert conn.execute("SELECT iw_plan_tz()").fetchone() == ("UTC",)
            (first,) = conn.execute(
                "SELECT min(ts) FROM iw_buckets('2023-06-30 03:00+00', '2023-07-01 03:00+00', '1d')"
            ).fetchone()  # type: ignore[misc]
        assert first == datetime(2023, 6, 30, tzinfo=UTC)  # the UTC day, not Shanghai's (16:00 UTC the day before)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
