"""`infrawatch demo` on a clean machine: no INFRAWATCH_* variables, an empty data directory."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

READY = "infrawatch demo is ready"


def _read_until_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = "".join(lines)
        if READY in seen and "Press Ctrl-C" in seen:
            return seen
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"the demo did not report ready (exit {proc.returncode}): {''.join(lines)[-2000:]}")


@pytest.mark.slow
def test_demo_starts_from_nothing_and_serves_observations_and_progress(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    env["HOME"] = str(tmp_path)  # the data directory lives under it and starts empty
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    stderr = open(tmp_path / "demo.stderr", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "infrawatch", "demo", "--port", "0"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        text = _read_until_ready(proc, timeout=300)
        base = re.search(r"web console\s+(http://\S+?)/\s", text)[1]
        broker = re.search(r"MQTT broker\s+mqtt://127\.0\.0\.1:(\d+)", text)[1]
        viewer = re.search(r"key viewer\s+(\S+)", text)[1]
        headers = {"Authorization": f"Bearer {viewer}"}

        # Target progress is served, from the backfilled history that came in over MQTT.
        progress = httpx.get(f"{base}/v1/progress", headers=headers, timeout=30).json()
        by_id = {p["target_id"]: p for p in progress["progress"]}
        assert by_id["jx-2023-5g-new"]["status"] in {"achieved", "missed"}
        assert by_id["jx-2023-5g-new"]["actual"] > 0

        # An operator's gateway publishes now; the observation flows through the collector into the API.
        now = datetime.now(UTC).replace(microsecond=0)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-gateway", protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", int(broker))
        client.loop_start()
        payload = {"ts": now.isoformat(), "region": "361100", "value": 4321}
        client.publish("infra/v1/cucc/gigabit_users", json.dumps(payload), qos=1).wait_for_publish(10)
        client.loop_stop()
        deadline = time.monotonic() + 90
        fresh = []
        while time.monotonic() < deadline:
            rows = httpx.get(f"{base}/v1/freshness", headers=headers, timeout=10).json()["feeds"]
            fresh = [r for r in rows if (r["operator"], r["metric"], r["region"]) == ("cucc", "gigabit_users", 361100)
                     and datetime.fromisoformat(r["last_ts"]) >= now]
            if fresh:
                break
            time.sleep(1)
        assert fresh, "the observation published over MQTT never reached the API"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    stderr.close()
    assert proc.returncode == 0, (tmp_path / "demo.stderr").read_text()[-2000:]
    assert not list(tmp_path.glob(".local/share/infrawatch/pg/postmaster.pid")), "PostgreSQL left running"
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes of the demo left running: {leftovers}"
