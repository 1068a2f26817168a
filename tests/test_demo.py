"""`infrawatch demo` on a clean machine: no INFRAWATCH_* variables, an empty home directory.

What a newcomer sees in the first minutes: the demo says it is ready only when everything its backfill sent
is stored; its history runs up to now, so at now its targets are on track, at risk and off track, a handful
of alerts fire and the feeds are fresh; /docs works offline; and nothing it started outlives it, even when
it is killed with SIGKILL.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

READY = "infrawatch demo is ready"


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    env["HOME"] = str(home)  # the data directory lives under it and starts empty
    env.pop("XDG_RUNTIME_DIR", None)  # as in a container: no RuntimeDirWarning may show
    return env


def _read_until_ready(proc: subprocess.Popen[str], timeout: float, stderr: Path) -> str:
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
    raise AssertionError(
        f"the demo did not report ready (exit {proc.returncode}): {''.join(lines)[-2000:]}\n"
        f"stderr: {stderr.read_text(errors='replace')[-3000:]}"
    )


def _processes_with_home(home: Path) -> list[str]:
    """Every process whose environment says HOME=home: the demo's children inherit it, whatever their command."""
    found = []
    needle = f"HOME={home}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name}: {command[:150]}")
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~45 s on an idle machine; minutes on a busy one
def test_the_demo_from_a_clean_home_is_true_live_offline_and_leaves_nothing_behind_when_killed(tmp_path: Path):
    stderr_path = tmp_path / "demo.stderr"
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infrawatch", "demo", "--port", "0"],
            cwd=tmp_path,
            env=_clean_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        text = _read_until_ready(proc, timeout=480, stderr=stderr_path)
        # The ready line says what was sent and what was stored, and it waited until they were equal.
        counts = re.search(r"([\d,]+) observations sent, ([\d,]+) stored", text)
        assert counts, text
        sent, stored = (int(x.replace(",", "")) for x in counts.groups())
        assert sent > 100_000 and stored == sent, text
        assert "missing" not in text
        base = re.search(r"web console\s+(http://\S+?)/\s", text)[1]
        broker = re.search(r"MQTT broker\s+mqtt://127\.0\.0\.1:(\d+)", text)[1]
        viewer = re.search(r"key viewer\s+(\S+)", text)[1]
        headers = {"Authorization": f"Bearer {viewer}"}

        # Live: the demo's targets are this year's, judged at now, and show every kind of progress.
        progress = httpx.get(f"{base}/v1/progress", headers=headers, timeout=60).json()["progress"]
        demo = {p["target_id"]: p["status"] for p in progress if p["target_id"].startswith("demo-")}
        year = datetime.now(UTC).year
        assert all(f"-{year}-" in t for t in demo), demo
        assert {"on_track", "at_risk", "off_track"} <= set(demo.values()), demo
        # The originals stay beside the demo targets, ids unchanged; those whose deadline is before the demo's
        # history are retired there (they could show nothing but no data).
        listed = httpx.get(
            f"{base}/v1/targets", params={"include_retired": "true"}, headers=headers, timeout=60
        ).json()["targets"]
        originals = {t["target"]["id"]: t["target"] for t in listed if not t["target"]["id"].startswith("demo-")}
        assert "jx-2023-5g-new" in originals and not originals["jx-2023-5g-new"]["active"]

        # A handful of alerts fire, not hundreds.
        firing = httpx.get(f"{base}/v1/alerts", params={"state": "firing"}, headers=headers, timeout=30).json()
        assert 1 <= len(firing["alerts"]) <= 30, [a.get("title") for a in firing["alerts"]]

        # The feeds are fresh: the data-centre meters reported within the last few hours.
        feeds = httpx.get(f"{base}/v1/freshness", headers=headers, timeout=30).json()["feeds"]
        newest = max(datetime.fromisoformat(r["last_ts"]) for r in feeds)
        assert newest > datetime.now(UTC) - timedelta(hours=3), newest

        # /docs and /redoc name no other host, and what they load is served by the demo itself.
        for page in ("/docs", "/redoc"):
            html = httpx.get(f"{base}{page}", timeout=10).text
            urls = re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""", html)
            assert urls, html
            assert not [u for u in urls if re.match(r"(https?:)?//", u)], urls
            for u in urls:
                if u.startswith("/") and not u.endswith(".json"):
                    assert httpx.get(f"{base}{u}", timeout=10).status_code == 200, u

        # An operator's gateway publishes now; the observation flows through the collector into the API.
        now = datetime.now(UTC).replace(microsecond=0)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-gateway", protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", int(broker))
        client.loop_start()
        payload = {"ts": now.isoformat(), "region": "361100", "value": 4321}
        client.publish("infra/v1/cucc/gigabit_users", json.dumps(payload), qos=1).wait_for_publish(10)
        client.loop_stop()
        deadline = time.monotonic() + 60
        fresh = []
        while time.monotonic() < deadline and not fresh:
            rows = httpx.get(f"{base}/v1/freshness", headers=headers, timeout=10).json()["feeds"]
            fresh = [
                r
                for r in rows
                if (r["operator"], r["metric"], r["region"]) == ("cucc", "gigabit_users", 361100)
                and datetime.fromisoformat(r["last_ts"]) >= now
            ]
            time.sleep(0.5)
        assert fresh, "the observation published over MQTT never reached the API"
        assert _processes_with_home(tmp_path), "the test cannot see the demo's processes"
    finally:
        proc.kill()  # SIGKILL: the demo has no chance to clean up; its watchdog and its children's PDEATHSIG do
        proc.wait(10)
    deadline = time.monotonic() + 45
    while (left := _processes_with_home(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], f"processes of the demo left running after SIGKILL: {left}"
    assert not list(tmp_path.glob(".local/share/infrawatch/pg/postmaster.pid")), "PostgreSQL left running"
    assert "RuntimeDirWarning" not in stderr_path.read_text()


def test_a_taken_port_fails_at_once_naming_the_port_and_the_option(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "infrawatch", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=_clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} is taken" in result.stderr and "--port" in result.stderr, result.stderr
    assert time.monotonic() - started < 45  # the time to start Python on a busy machine: nothing else started
    assert not (tmp_path / ".local/share/infrawatch/pg").exists()
    assert _processes_with_home(tmp_path) == []
