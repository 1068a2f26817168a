"""jiangxi-2023 end to end: loaded through CSV and through MQTT into two empty databases it gives the
same indicators, and `infrawatch status --as-of 2023-12-31` shows the statuses the scenario was designed for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from simulators.generate import scenario_window
from simulators.run import backfill
from simulators.scenario import load_scenario
from simulators.sinks.csvfile import CsvSink
from simulators.sinks.mqtt import MqttSink
from tests.conftest import Broker, with_dbname

ROOT = Path(__file__).resolve().parents[1]
#: The test variant, small enough for a test: the monthly statistics as shipped, traffic and base-station
#: energy weekly instead of daily, data-centre meters every 6 hours instead of 5 minutes (~27,000 rows).
TEST_VARIANT = {
    "traffic": [{**t.model_dump(), "cadence": "7d"} for t in load_scenario("jiangxi-2023").traffic],
    "base_station_energy": {"cadence": "7d"},
    "data_centres": {"cadence": "6h"},
}


def iw(*args: str, url: str) -> subprocess.Popen[str]:
    """`infrawatch ARGS` against the database at url, started in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "infrawatch", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "INFRAWATCH_LOG_LEVEL": "WARNING", "INFRAWATCH_DATABASE_URL": url},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{out[-2000:]}\n{err[-2000:]}"
    return out


@pytest.fixture
def second_db(pg_server: str, template_db: str) -> Iterator[str]:
    """Another fresh migrated database, for the second path."""
    name = f"iw_sim_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield with_dbname(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def observations(url: str) -> list[tuple]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT metric, region, operator, entity, ts, value FROM observation "
            "ORDER BY metric, region, operator, entity, ts"
        ).fetchall()


def observation_count(url: str) -> int:
    with psycopg.connect(url) as c:
        row = c.execute("SELECT count(*) FROM observation").fetchone()
    return int(row[0]) if row else 0


def statuses(*urls: str) -> list[dict[str, dict]]:
    """`infrawatch targets load` then `status --as-of 2023-12-31 --json` in each database (in parallel)."""
    for proc in [iw("targets", "load", url=u) for u in urls]:
        finish(proc)
    outputs = [finish(p) for p in [iw("status", "--as-of", "2023-12-31", "--json", url=u) for u in urls]]
    return [{p["target_id"]: p for p in json.loads(out)} for out in outputs]


@pytest.mark.slow
def test_jiangxi_2023_through_csv_and_mqtt_gives_the_same_indicators_and_the_designed_statuses(
    db_url: str, second_db: str, broker: Broker, tmp_path: Path
) -> None:
    sc = load_scenario("jiangxi-2023", TEST_VARIANT)
    window = scenario_window(sc)
    # CSV: simulate into files, load them with the administrator's command (in the background)
    backfill(sc, CsvSink(sc, tmp_path / "csv"), window.start_us, window.end_us)
    load = iw("load-csv", *sorted(str(p) for p in (tmp_path / "csv").iterdir()), url=db_url)

    # MQTT: the ingest service subscribed to a private broker, the simulator publishing to it
    log = tmp_path / "ingest.log"
    env = {**os.environ, "INFRAWATCH_DATABASE_URL": second_db, "INFRAWATCH_MQTT_URL": broker.url}
    env["INFRAWATCH_LOG_LEVEL"] = "INFO"
    with open(log, "wb") as fh:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "infrawatch", "ingest", "mqtt", "--client-id", "sim-it-ingest"],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while '"mqtt.subscribed"' not in log.read_text(errors="replace"):
            assert ingest.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ingest did not subscribe: " + log.read_text()[-2000:]
            time.sleep(0.1)
        report = backfill(sc, MqttSink(broker.url, batch=500), window.start_us, window.end_us)
        finish(load)
        expected_rows = observation_count(db_url)
        assert report.emitted == expected_rows  # jiangxi-2023 has no faults: one row per observation
        deadline = time.monotonic() + 180
        while observation_count(second_db) < expected_rows:
            assert ingest.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, (
                f"{observation_count(second_db)} of {expected_rows} stored\n" + log.read_text()[-3000:]
            )
            time.sleep(0.2)
    finally:
        ingest.terminate()
        ingest.wait(30)
        if load.poll() is None:
            load.kill()

    # the same observations, hence the same indicators and progress
    assert observations(db_url) == observations(second_db)
    via_csv, via_mqtt = statuses(db_url, second_db)
    assert {k: p["status"] for k, p in via_csv.items()} == {k: p["status"] for k, p in via_mqtt.items()}
    for k, p in via_csv.items():  # sums may add in another order: equal to the last few bits
        assert p["actual"] == (None if via_mqtt[k]["actual"] is None else pytest.approx(via_mqtt[k]["actual"])), k

    # the statuses the scenario was designed to produce
    expect = load_scenario("jiangxi-2023").expect
    assert expect is not None
    for target_id, wanted in expect.statuses.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        assert via_csv[target_id]["status"] in allowed, (target_id, via_csv[target_id])
    missed = [k for k, p in via_csv.items() if k.startswith("jx-2023") and p["status"] == "missed"]
    assert missed == ["jx-2023-ipv6-fixed"]
    # the lagging operator carries the shortfall of the missed target
    assert via_csv["jx-2023-ipv6-fixed"]["laggard_operators"][0]["key"] == expect.lagging_operator
