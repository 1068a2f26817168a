"""Helpers for the MQTT collector tests: the ingest process as a subprocess, a fast QoS 1 publisher, waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
BASE_TS = 1_704_038_400  # 2024-01-01T00:00:00+08:00 as epoch seconds


def seq_item(seq: int) -> dict[str, Any]:
    """Observation number `seq`: meter dc-seq of Nanchang, ts = base + seq seconds, value = seq."""
    return {"ts": _ts(BASE_TS + seq), "region": "360100", "entity": "dc-seq", "value": seq}


def _ts(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


class IngestProcess:
    """`python -m collectors.mqtt ingest mqtt` with the test's database and broker."""

    def __init__(
        self, workdir: Path, db_url: str, mqtt_url: str, client_id: str = "iw-test-ingest", *args: str
    ) -> None:
        self.workdir, self.db_url, self.mqtt_url, self.client_id, self.args = workdir, db_url, mqtt_url, client_id, args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"ingest-{client_id}.log"
        self.starts = 0

    def start(self) -> IngestProcess:
        env = dict(os.environ, INFRAWATCH_DATABASE_URL=self.db_url, INFRAWATCH_MQTT_URL=self.mqtt_url)
        env["INFRAWATCH_LOG_LEVEL"] = "INFO"
        with open(self.log, "ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collectors.mqtt", "ingest", "mqtt", "--client-id", self.client_id, *self.args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.starts += 1
        return self

    def wait_subscribed(self, timeout: float = 30) -> None:
        marker = '"event": "mqtt.subscribed"'
        wait_for(
            lambda: self.log.read_text().split(f"--- start {self.starts - 1}\n")[-1].count(marker) > 0,
            timeout,
            f"ingest {self.client_id} did not subscribe; see {self.log}",
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.kill()

    def log_events(self, event: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == event:
                    out.append(record)
        return out


class Publisher:
    """A QoS 1 publisher that keeps many messages in flight (paho's default of 20 would crawl)."""

    def __init__(
        self, url_port: int, username: str | None = None, password: str | None = None, protocol: int = mqtt.MQTTv5
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()

    def publish_all(
        self, messages: Iterable[tuple[str, str | bytes]], window: int = 2000
    ) -> list[mqtt.MQTTMessageInfo]:
        infos: list[mqtt.MQTTMessageInfo] = []
        for topic, payload in messages:
            infos.append(self.client.publish(topic, payload, qos=1))
            if len(infos) % window == 0:
                infos[-window].wait_for_publish(30)
        for info in infos:
            info.wait_for_publish(30)
        return infos

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(predicate: Callable[[], bool], timeout: float, message: str = "condition not met") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{message} within {timeout:.0f}s")


def scalar(db_url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(sql, args).fetchone()
        return row[0] if row else None


class Subscriber:
    """Collects messages on a filter (e.g. a `_rejects` topic) in a background thread."""

    def __init__(self, port: int, topic: str, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.granted: list[Any] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))

        def on_subscribe(c: Any, u: Any, mid: int, rcs: Any, props: Any) -> None:
            self.granted = list(rcs)
            self._subscribed.set()

        self.client.on_subscribe = on_subscribe
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not answered"

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(p) for _, p in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
