"""Without Mosquitto, the embedded fallback broker is amqtt (MQTT 3.1.1): the collector still stores what
gateways publish there. (amqtt 0.12 does not keep a disconnected client's session, so messages published
while the collector is down are not kept: the fallback is for the laptop demo; production runs Mosquitto.)"""

import json
import os
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import psycopg
import pytest

from core.embedded import free_port, wait_for_port


def _stored(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return int(conn.execute("SELECT count(*) FROM observation").fetchone()[0])  # type: ignore[index]


def _publish(port: int, first: int, count: int) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gw-{first}", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for i in range(first, first + count):
        item = {
            "ts": f"2023-06-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00+08:00",
            "region": "360100",
            "value": i,
            "entity": "dc-a",
        }
        client.publish("infra/v1/cmcc/dc_energy_it_kwh", json.dumps(item), qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(what)


@pytest.mark.slow
def test_collector_speaks_mqtt_3_1_1_to_the_amqtt_fallback_broker(db_url, tmp_path):
    port = free_port()
    broker = subprocess.Popen(
        [sys.executable, "-m", "core.amqtt_broker", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = {**os.environ, "INFRAWATCH_MQTT_URL": f"mqtt://127.0.0.1:{port}", "INFRAWATCH_MQTT_PROTOCOL": "3.1.1"}
    cmd = [sys.executable, "-m", "collectors.mqtt", "ingest", "mqtt", "--client-id", "amqtt-ingest"]
    ingest = None
    try:
        wait_for_port("127.0.0.1", port, 30)
        with open(tmp_path / "ingest.log", "ab") as log:
            ingest = subprocess.Popen(cmd, env=env, stderr=log)
        _wait(lambda: b'"mqtt.connected"' in (tmp_path / "ingest.log").read_bytes(), 60, "never connected")
        _publish(port, 0, 50)
        _wait(lambda: _stored(db_url) == 50, 60, "the first 50 were not stored")

        ingest.terminate()
        assert ingest.wait(30) == 0  # stops cleanly, having acknowledged what it stored
    finally:
        if ingest is not None and ingest.poll() is None:
            ingest.terminate()
            ingest.wait(30)
        broker.terminate()
        broker.wait(10)
