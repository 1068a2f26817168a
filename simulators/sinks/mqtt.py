"""MQTT sink: topic infra/v1/{operator}/{metric}, QoS 1, JSON object or array payloads.

One or more client connections per operator (each with its own credentials when given: the
operator id as username and its key as password), a window of unacknowledged messages per
connection, and an optional rate limit. The wire client is simulators.sinks.mqtt_wire (a lean
MQTT 3.1.1 publisher: paho's per-message bookkeeping caps it near 10k QoS 1 messages/s).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pandas as pd

from core.settings import MqttEndpoint
from simulators.faults import item_json
from simulators.sinks import RateLimiter, SinkError, SinkReport
from simulators.sinks.mqtt_wire import WireError, WirePublisher

log = logging.getLogger(__name__)

MAX_PAYLOAD = 256 * 1024


def topic(operator: str, metric: str) -> str:
    return f"infra/v1/{operator}/{metric}"


def messages(out: pd.DataFrame, batch: int) -> Iterator[tuple[str, str, bytes, int]]:
    """(operator, topic, payload, observations) per message: consecutive items of one operator and
    metric gathered into arrays of up to `batch` (batch 1 sends single objects); a broken payload
    always travels alone so it cannot take valid items down with it."""
    if out.empty:
        return
    items = item_json(out)
    broken = (out["raw"] != "").to_numpy()
    ops = out["operator"].to_numpy(dtype=object)
    metrics = out["metric"].to_numpy(dtype=object)
    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(len(out)):
        groups.setdefault((ops[i], metrics[i]), []).append(i)
    for (op, metric), idx in groups.items():
        t = topic(op, metric)
        pending: list[str] = []
        size = 0
        for i in idx:
            text = items[i]
            if broken[i]:
                yield op, t, text.encode(), 1
                continue
            if pending and (len(pending) >= batch or size + len(text) + 2 > MAX_PAYLOAD):
                yield op, t, _payload(pending, batch), len(pending)
                pending, size = [], 0
            pending.append(text)
            size += len(text) + 1
        if pending:
            yield op, t, _payload(pending, batch), len(pending)


def _payload(items: list[str], batch: int) -> bytes:
    if batch == 1 and len(items) == 1:
        return items[0].encode()
    return ("[" + ",".join(items) + "]").encode()


class MqttSink:
    """Publishes outbox rows to an MQTT broker (MQTT 3.1.1, QoS 1)."""

    def __init__(
        self,
        url: str,
        *,
        keys: dict[str, str] | None = None,
        batch: int = 200,
        rate: float = 0,
        connections_per_operator: int = 1,
        window: int = 2000,
        client_prefix: str = "infrawatch-sim",
        ack_timeout: float = 60.0,
    ) -> None:
        self.endpoint = MqttEndpoint(url)
        self.keys = keys or {}
        self.batch = max(1, batch)
        self.window = max(1, window)
        self.per_operator = max(1, connections_per_operator)
        self.prefix = client_prefix
        self.ack_timeout = ack_timeout
        self.report = SinkReport("mqtt")
        self._limiter = RateLimiter(rate)
        self._conns: dict[str, list[WirePublisher]] = {}
        self._rr: dict[str, int] = {}
        self._topics: dict[str, bytes] = {}

    def connect(self, operator: str) -> list[WirePublisher]:
        """The operator's connections (opened on first use)."""
        if operator in self._conns:
            return self._conns[operator]
        conns = []
        username: str | None = self.endpoint.username
        password: str | None = self.endpoint.password
        if operator in self.keys:
            username, password = operator, self.keys[operator]
        for n in range(self.per_operator):
            try:
                conns.append(
                    WirePublisher(
                        self.endpoint.host,
                        self.endpoint.port,
                        client_id=f"{self.prefix}-{operator}-{n}",
                        username=username,
                        password=password,
                        tls=self.endpoint.tls,
                        window=self.window,
                    )
                )
            except WireError as exc:
                for c in conns:
                    c.close()
                raise SinkError(
                    f"MQTT broker {self.endpoint.host}:{self.endpoint.port}, operator {operator}: {exc}; "
                    "is it running? pass --url mqtt://user:pass@host:port, or --key OPERATOR=PASSWORD"
                ) from None
        self._conns[operator] = conns
        self._rr[operator] = 0
        log.info(
            "mqtt connected",
            extra={"event": "simulate.mqtt_connected", "operator": operator, "connections": len(conns)},
        )
        return conns

    def send(self, out: pd.DataFrame) -> None:
        for operator, t, payload, count in messages(out, self.batch):
            self.publish(operator, t, payload, count)
        for conns in self._conns.values():
            for c in conns:
                c.flush_out()

    def publish(self, operator: str, t: str, payload: bytes, count: int = 1) -> None:
        conns = self._conns.get(operator) or self.connect(operator)
        conn = conns[self._rr[operator] % len(conns)]
        self._rr[operator] += 1
        if self._limiter.rate > 0:
            self._limiter.take(count)
            conn.publish(self._topic(t), payload)
            conn.flush_out()
        else:
            conn.publish(self._topic(t), payload)
        self.report.messages += 1
        self.report.observations += count

    def _topic(self, t: str) -> bytes:
        b = self._topics.get(t)
        if b is None:
            b = self._topics[t] = t.encode()
        return b

    def idle(self) -> None:
        """Between live sends: read acknowledgements, keep connections alive."""
        try:
            for conns in self._conns.values():
                for c in conns:
                    c.ping_if_idle()
        except WireError as exc:
            raise SinkError(str(exc)) from None

    def flush(self) -> None:
        """Wait until the broker has acknowledged every message."""
        try:
            for conns in self._conns.values():
                for c in conns:
                    c.flush_out()
            for conns in self._conns.values():
                for c in conns:
                    c.wait_below(0, self.ack_timeout)
        except WireError as exc:
            raise SinkError(str(exc)) from None

    def close(self) -> SinkReport:
        try:
            self.flush()
        finally:
            for conns in self._conns.values():
                for c in conns:
                    c.close()
            self._conns.clear()
        return self.report
