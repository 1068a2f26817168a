"""Sinks against real services: the MQTT sink publishes every message at QoS 1 to a private broker,
with each operator's own credentials; the CLI writes CSV files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pandas as pd
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.generate import scenario_window
from simulators.run import backfill
from simulators.scenario import load_scenario
from simulators.sinks import SinkError
from simulators.sinks.mqtt import MqttSink, messages
from tests.conftest import Broker

ROOT = Path(__file__).resolve().parents[1]


class Subscriber:
    """Collects every message under infra/v1/# (QoS 1)."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sim-test-sub", protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *a: c.subscribe("infra/v1/#", qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10), "subscriber did not get its subscription"

    def wait_for(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_mqtt_sink_publishes_every_message_to_the_operator_topics(broker: Broker) -> None:
    # two days with every fault kind, malformed ones frequent enough to include broken payloads
    sc = load_scenario("faults", {"end": "2023-06-02", "faults": {"malformed": 0.2}})
    w = scenario_window(sc)
    sub = Subscriber(broker.port)
    try:
        report = backfill(sc, MqttSink(broker.url, batch=20), w.start_us, w.end_us)
        assert report.sink is not None
        sub.wait_for(report.sink.messages)
    finally:
        sub.stop()
    assert report.sink.messages > 150
    assert len(sub.received) == report.sink.messages
    topics = {t for t, _ in sub.received}
    assert "infra/v1/cmcc/bs5g_total" in topics and "infra/v1/admin/population" in topics
    # a broken payload arrives as sent: on its own, not JSON
    assert any(not p.startswith((b"{", b"[")) or not p.endswith((b"}", b"]")) for _, p in sub.received)


def test_mqtt_sink_uses_each_operators_own_credentials(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    for i, (user, password) in enumerate([("cmcc", "cm-secret"), ("ctcc", "ct-secret"), ("reader", "r")]):
        subprocess.run(
            ["mosquitto_passwd", "-b", *([] if i else ["-c"]), str(passwd), user, password],
            check=True,
            capture_output=True,
        )
    passwd.chmod(0o600)
    # (the fixture's configuration runs Mosquitto as root when we are root, so it can read the file)
    b = Broker(tmp_path / "broker", conf_extra=f"allow_anonymous false\npassword_file {passwd}\n")
    b.workdir.mkdir()
    b.start()
    try:
        sub = Subscriber(b.port, "reader", "r")
        sink = MqttSink(b.url, keys={"cmcc": "cm-secret", "ctcc": "ct-secret"}, batch=1)
        sink.publish(
            "cmcc", "infra/v1/cmcc/bs5g_total", b'{"ts":"2023-06-30T00:00:00+08:00","region":"360100","value":1}'
        )
        sink.publish(
            "ctcc", "infra/v1/ctcc/bs5g_total", b'{"ts":"2023-06-30T00:00:00+08:00","region":"360100","value":2}'
        )
        assert sink.close().messages == 2
        sub.wait_for(2)
        sub.stop()
        assert sorted(t for t, _ in sub.received) == ["infra/v1/cmcc/bs5g_total", "infra/v1/ctcc/bs5g_total"]
        with pytest.raises(SinkError, match=r"bad user name or password|not authorised"):
            MqttSink(b.url, keys={"cmcc": "wrong"}).connect("cmcc")
    finally:
        b.stop()


def test_single_object_messages_are_objects_and_batches_are_arrays() -> None:
    sc = load_scenario("jiangxi-2023", {"end": "2022-12-31"})
    from simulators.faults import FaultInjector
    from simulators.generate import generate

    out = FaultInjector(sc).outbox(generate(sc))
    singles = list(messages(out, 1))
    batched = list(messages(out, 11))
    assert all(p.startswith(b"{") for _, _, p, _ in singles)
    assert all(p.startswith(b"[") for _, _, p, _ in batched)
    assert sum(n for *_, n in batched) == len(singles) == len(out)
    # 11 cities per operator and metric fit one array each
    assert len(batched) == len(out.groupby(["operator", "metric"]).size())


def test_simulate_command_writes_csv_files_and_reports_its_faults(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infrawatch",
            "simulate",
            "--scenario",
            "faults",
            "--to",
            "csv",
            "--out",
            str(tmp_path),
            "--until",
            "2023-06-03",
            "--format",
            "wide",
            "--encoding",
            "gb18030",
            "--seed",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "faults seed 5:" in result.stdout and "duplicate" in result.stdout
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "faults-cmcc-2023-06.csv" in files and "faults-admin-2023-05.csv" in files
    frame = pd.read_csv(tmp_path / "faults-cmcc-2023-06.csv", encoding="gb18030", dtype=str)
    assert {"ts", "region", "城市", "operator", "entity", "bs5g_total", "dc_energy_it_kwh"} <= set(frame.columns)


def test_simulate_command_names_the_shipped_scenarios_when_one_is_unknown() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infrawatch", "simulate", "--scenario", "nowhere", "--to", "csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no scenario named 'nowhere'" in result.stderr and "jiangxi-2023" in result.stderr


def test_http_sink_pushes_batches_with_each_operators_key_and_the_service_rejects_the_faulty_items(
    db_url: str, tmp_path: Path
) -> None:
    from api.keys import create_key
    from core.embedded import free_port, wait_for_port
    from core.settings import get_settings
    from simulators.sinks.http import HttpSink

    secret = get_settings().secret_key
    with psycopg.connect(db_url) as conn:
        keys = {
            op: create_key(conn, role="operator", operator=op, name=f"sim {op}", secret=secret)[0]
            for op in ("cmcc", "ctcc", "cucc", "cbn")
        }
        admin = create_key(conn, role="admin", operator=None, name="sim admin", secret=secret)[0]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "serve", "--no-scheduler", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "INFRAWATCH_DATABASE_URL": db_url, "INFRAWATCH_DATA_DIR": str(tmp_path / "data")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        sc = load_scenario("faults", {"end": "2023-06-02"})
        w = scenario_window(sc)
        report = backfill(
            sc, HttpSink(f"http://127.0.0.1:{port}", keys=keys, admin_key=admin, batch=100), w.start_us, w.end_us
        )
    finally:
        server.terminate()
        server.wait(30)
    s = report.sink
    assert s is not None and s.messages >= 10
    # every item got an answer, and the faulty ones were refused
    assert s.accepted + s.duplicates + s.revised + s.rejected == s.observations == report.emitted
    refused_kinds = ("malformed", "future_ts", "foreign_operator")
    assert s.rejected == sum(report.faults[k] for k in refused_kinds) > 0
    assert s.duplicates == report.faults["duplicate"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM observation").fetchone()
    assert row is not None and row[0] == s.accepted


def test_mqtt_sink_keeps_to_the_configured_rate(broker: Broker) -> None:
    sink = MqttSink(broker.url, batch=1, rate=1000)
    payload = b'{"ts":"2023-06-30T00:00:00+08:00","region":"360100","value":1}'
    started = time.monotonic()
    for _ in range(600):
        sink.publish("cmcc", "infra/v1/cmcc/bs5g_total", payload)
    sink.close()
    # 600 messages at 1,000/s with a 0.2 s burst allowance take at least 0.4 s
    assert time.monotonic() - started >= 0.38


def test_wide_gb18030_files_load_completely_with_the_admin_command(db_url: str, tmp_path: Path) -> None:
    from simulators.sinks.csvfile import CsvSink

    sc = load_scenario("jiangxi-2023", {"start": "2023-06-01", "end": "2023-06-30", "data_centres": {"cadence": "6h"}})
    w = scenario_window(sc)
    report = backfill(sc, CsvSink(sc, tmp_path / "wide", layout="wide", encoding="gb18030"), w.start_us, w.end_us)
    files = sorted(str(p) for p in (tmp_path / "wide").iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "infrawatch", "load-csv", "--json", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "INFRAWATCH_LOG_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM observation").fetchone()
        month_end = conn.execute(
            "SELECT count(*) FROM observation WHERE metric = 'bs5g_total' AND ts = '2023-06-30T00:00:00+08:00'"
        ).fetchone()
    assert row is not None and row[0] == report.observations
    assert month_end is not None and month_end[0] == 4 * 11  # "2023-06" rows land on the month end
