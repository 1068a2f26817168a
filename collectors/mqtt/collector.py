"""The MQTT ingest service: a persistent MQTT 5 session whose QoS 1 messages are acknowledged only after the
ingest pipeline committed (or quarantined) their observations.

Threads: paho's network loop receives messages into a bounded queue; a preparing thread (`read_ahead`)
batches them (by size and by time) and prepares each batch (`Delivery.prepare`: frames, validation, COPY
text); the main thread has `ingest.delivery.Delivery` store it, report rejections on
`infra/v1/{operator}/_rejects` and then acknowledge, while the next batch is prepared. The broker never has more than
`receive_maximum` unacknowledged messages out to us, so a slow database slows intake instead of growing memory.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collectors.mqtt.messages import raw_payload_text, reject_reports, rejects_topic, subscription, to_pending
from infrawatch.settings import MqttEndpoint
from ingest import telemetry
from ingest.ahead import read_ahead
from ingest.delivery import Delivery, PendingMessage, PreparedDelivery
from ingest.report import BatchReport, Rejection

log = logging.getLogger(__name__)
SOURCE = "mqtt"
_RECEIVED = telemetry.MESSAGES_RECEIVED.labels(SOURCE)
_IN_FLIGHT = telemetry.IN_FLIGHT.labels(SOURCE)
_PUBACK = 0x40
_READ_BLOCK = 64 * 1024


class BufferedClient(mqtt.Client):
    """paho's client, reading the socket in 64 KiB blocks and handling every complete packet a read brought.

    paho 2 reads each packet's fixed header one byte per recv() and handles one packet per select() wake-up;
    at tens of thousands of small messages a second those system calls dominate the network thread.
    """

    _rbuf: bytes = b""
    _rpos: int = 0
    _rsock: object = None
    #: Called with (topic bytes, payload, packet id, qos) for each QoS 0/1 PUBLISH instead of paho's
    #: on_message dispatch (which matches every topic against the per-filter callbacks we never add).
    on_publish_received: Callable[[bytes, bytes, int, int], None] | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._sock is not self._rsock:  # a new connection: nothing buffered belongs to it
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, _READ_BLOCK))
            if not data:
                return data
            self._rbuf, self._rpos = data, 0
        out = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        """QoS 0/1 PUBLISH without paho's property objects (we use none, and allow no topic aliases);
        QoS 2 and anything unusual go to paho's own handler."""
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if qos == 2 or len(packet) < 2:
            return super()._handle_publish()
        pos = 2 + int.from_bytes(packet[:2], "big")
        topic = packet[2:pos]
        mid = 0
        if qos:
            mid = int.from_bytes(packet[pos : pos + 2], "big")
            pos += 2
        if self._protocol == mqtt.MQTTv5:
            props_len, shift = 0, 0
            while pos < len(packet) and shift <= 21:  # variable byte integer: the properties' length
                byte = packet[pos]
                pos += 1
                props_len |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            else:
                return super()._handle_publish()
            pos += props_len
        if pos > len(packet) or not topic:
            return super()._handle_publish()  # malformed or empty topic: paho decides
        hook = self.on_publish_received
        if hook is not None and self._manual_ack:
            hook(bytes(topic), bytes(packet[pos:]), mid, qos)
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        message = mqtt.MQTTMessage(mid=mid, topic=bytes(topic))
        message.dup, message.qos, message.retain = bool(header & 0x08), qos, bool(header & 0x01)
        message.payload = bytes(packet[pos:])
        message.timestamp = time.monotonic()
        self._handle_on_message(message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (
            rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._rpos < len(self._rbuf)
            and self._sock is not None
            and self._sock is self._rsock
        ):
            rc = super().loop_read(max_packets)
        return rc


@lru_cache(maxsize=4096)
def topic_text(topic: bytes) -> str:
    """A topic's text (topics repeat, so cached); one that is not UTF-8 is named by its repr."""
    try:
        return topic.decode("utf-8")
    except UnicodeDecodeError:
        return repr(topic)


def _tune_garbage_collector() -> None:
    """Every received message allocates a few container objects and tens of thousands can be queued: with
    the default thresholds the cyclic collector runs every 700 allocations and its older generations keep
    walking the queue and every module's objects. Freeze what exists at start-up and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@dataclass(slots=True)
class CollectorConfig:
    mqtt_url: str
    database_url: str
    #: Fixed, so the broker keeps our session (and the messages queued for it) across restarts.
    client_id: str = "infrawatch-ingest"
    share_group: str | None = None
    #: Flush a batch at this many observations ...
    batch_observations: int = 20000
    #: ... or this long after its first message arrived.
    batch_interval_s: float = 0.2
    #: MQTT 5 Receive Maximum: unacknowledged messages the broker may have out to us.
    receive_maximum: int = 40000
    #: Bytes of received, unstored payload held in memory before intake pauses.
    max_buffered_bytes: int = 64 * 1024 * 1024
    session_expiry_s: int = 86400
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    #: After SIGTERM, how long to keep retrying an unreachable database before exiting without acknowledging.
    shutdown_grace_s: float = 10.0
    #: "5", or "3.1.1" for brokers without MQTT 5 (the pure-Python amqtt fallback): a persistent session
    #: (clean session off) without session expiry, Receive Maximum or shared subscriptions.
    protocol: str = "5"

    @property
    def mqtt5(self) -> bool:
        return self.protocol != "3.1.1"


class IntakeQueue:
    """FIFO of pending messages bounded by count and bytes; `put` blocks while full (always admits one)."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[tuple[PendingMessage, int]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def put(self, message: PendingMessage, nbytes: int, abandon: Callable[[], bool] = lambda: False) -> bool:
        with self._lock:
            while self._items and (len(self._items) >= self.max_messages or self._bytes + nbytes > self.max_bytes):
                if abandon():
                    return False
                self._not_full.wait(0.5)
            self._items.append((message, nbytes))
            self._bytes += nbytes
            self._not_empty.notify()
            return True

    def get(self, timeout: float) -> PendingMessage | None:
        with self._lock:
            if not self._items:
                self._not_empty.wait(timeout)
            if not self._items:
                return None
            message, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._not_full.notify()
            return message

    def take(self, max_observations: int) -> list[PendingMessage]:
        """Without waiting: queued messages until they weigh at least `max_observations` (or none are left)."""
        taken: list[PendingMessage] = []
        weight = 0
        with self._lock:
            while self._items and weight < max_observations:
                message, nbytes = self._items.popleft()
                self._bytes -= nbytes
                taken.append(message)
                weight += message.size
            if taken:
                self._not_full.notify_all()
        return taken

    def __len__(self) -> int:
        return len(self._items)


def next_batch(
    queue: IntakeQueue, max_observations: int, interval_s: float, clock: Callable[[], float] = time.monotonic
) -> list[PendingMessage]:
    """Messages for one batch: waits up to `interval_s` for the first, then collects until full or the interval ends."""
    first = queue.get(timeout=interval_s)
    if first is None:
        return []
    batch, weight = [first], first.size
    deadline = clock() + interval_s
    while weight < max_observations:
        taken = queue.take(max_observations - weight)  # what is already queued, in one go
        if taken:
            batch.extend(taken)
            weight += sum(m.size for m in taken)
            continue
        remaining = deadline - clock()
        message = queue.get(timeout=max(remaining, 0.0))
        if message is None:
            break
        batch.append(message)
        weight += message.size
    return batch


class MqttCollector:
    """Runs until `stop()` (or SIGTERM/SIGINT): receive, batch, store, report rejections, acknowledge."""

    def __init__(self, config: CollectorConfig, connect: Callable[[], psycopg.Connection] | None = None) -> None:
        self.config = config
        self.endpoint = MqttEndpoint(config.mqtt_url)
        self.queue = IntakeQueue(2 * config.receive_maximum, config.max_buffered_bytes)
        self._stop = threading.Event()
        self._stop_at = 0.0
        self._disconnected = threading.Event()
        self._totals = BatchReport()
        self._acknowledged = 0
        self._last_progress = time.monotonic()
        self._ack_lock = threading.Lock()
        self._generation = 0  # bumped on each connection; acks of older connections' messages are skipped
        self._acks: list[tuple[int, int, int]] = []  # (generation, mid, qos) acknowledged by the last delivery
        self._received = 0  # counted by the network thread ...
        self._received_reported = 0  # ... and added to the Prometheus counters by the main thread
        self.client = self._make_client()
        self.delivery = Delivery(
            connect or self._connect_database,
            source=SOURCE,
            on_rejected=self._publish_rejections,
            should_give_up=self._give_up,
        )

    # -- life cycle --------------------------------------------------------------------------------

    def run(self, install_signal_handlers: bool = True) -> None:
        if install_signal_handlers:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        c = self.config
        if not c.mqtt5 and c.share_group:
            raise ValueError("shared subscriptions need MQTT 5; drop --share-group or use an MQTT 5 broker")
        log.info(
            "mqtt ingest starting",
            extra={
                "event": "mqtt.starting",
                "broker": f"{self.endpoint.host}:{self.endpoint.port}",
                "client_id": c.client_id,
                "subscription": subscription(c.share_group),
            },
        )
        if c.mqtt5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = c.session_expiry_s
            props.ReceiveMaximum = c.receive_maximum
            self.client.connect_async(
                self.endpoint.host, self.endpoint.port, keepalive=c.keepalive_s, clean_start=False, properties=props
            )
        else:
            self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=c.keepalive_s)
        _tune_garbage_collector()
        self.client.loop_start()
        left: list[PendingMessage] = []
        prepared = read_ahead(self._prepared_batches(), name="mqtt-prepare")
        try:
            for batch in prepared:
                if self._deliver(batch) is None:  # gave up on an unreachable database during shutdown
                    left = batch.messages
                    break
        finally:
            prepared.close()
            self.delivery.close()
            if self.client.is_connected():
                self._disconnected.clear()
                self.client.disconnect()  # queued after the last acknowledgements, so they go out first
                self._disconnected.wait(5.0)
            self.client.loop_stop()
            log.info(
                "mqtt ingest stopped",
                extra={"event": "mqtt.stopped", "unacknowledged_left": len(left) + len(self.queue)},
            )

    def _prepared_batches(self) -> Iterator[PreparedDelivery]:
        """Batches from the intake queue, prepared for storing (`read_ahead` runs this a batch ahead of the
        storing, in its own thread). After stop() on_message leaves new messages to the broker and this
        flushes what was received."""
        c = self.config
        while not self._stop.is_set():
            batch = next_batch(self.queue, c.batch_observations, c.batch_interval_s)
            if batch:
                yield self.delivery.prepare(batch)
        while batch := next_batch(self.queue, c.batch_observations, 0.0):
            yield self.delivery.prepare(batch)

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop_at = time.monotonic()
            self._stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("stopping: flushing and acknowledging", extra={"event": "mqtt.stopping", "signal": signum})
        self.stop()

    def _give_up(self) -> bool:
        return self._stop.is_set() and time.monotonic() - self._stop_at > self.config.shutdown_grace_s

    def _report_received(self) -> None:
        received = self._received
        if received != self._received_reported:
            _RECEIVED.inc(received - self._received_reported)
            _IN_FLIGHT.inc(received - self._received_reported)
            self._received_reported = received

    def _deliver(self, batch: PreparedDelivery) -> object:
        self._report_received()
        try:
            result = self.delivery.deliver(batch)
        finally:
            self._flush_acks()
        if result is not None:
            self._totals += result.report.counts()  # counts only: the rejections themselves are not kept
            self._acknowledged += result.acknowledged
        self._log_progress()
        return result

    def _log_progress(self, every_s: float = 30.0) -> None:
        """One summary line per interval while data flows: received, stored, rejected, acknowledged."""
        now = time.monotonic()
        if now - self._last_progress < every_s or not self._totals.received:
            return
        t = self._totals
        log.info(
            "ingest progress",
            extra={
                "event": "mqtt.progress",
                "observations": t.received,
                "accepted": t.accepted,
                "duplicates": t.duplicates,
                "revised": t.revised,
                "rejected": t.rejected,
                "messages_acknowledged": self._acknowledged,
                "last_batch_id": t.batch_id,
                "queued": len(self.queue),
            },
        )
        self._totals, self._acknowledged, self._last_progress = BatchReport(), 0, now

    # -- database ------------------------------------------------------------------------------------

    def _connect_database(self) -> psycopg.Connection:
        return psycopg.connect(
            self.config.database_url,
            connect_timeout=5,
            application_name=f"infrawatch-{self.config.client_id}"[:63],
            keepalives=1,
            keepalives_idle=30,
        )

    # -- MQTT --------------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        c = self.config
        if c.mqtt5:
            client = BufferedClient(
                CallbackAPIVersion.VERSION2, client_id=c.client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            client = BufferedClient(
                CallbackAPIVersion.VERSION2,
                client_id=c.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set()
        client.reconnect_delay_set(c.reconnect_min_s, c.reconnect_max_s)
        client.max_inflight_messages_set(100)  # our own `_rejects` publications
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish_received = self._on_publish
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error(
                "broker refused the connection; check INFRAWATCH_MQTT_URL's user and password",
                extra={"event": "mqtt.refused", "reason": str(reason_code)},
            )
            return
        with self._ack_lock:
            self._generation += 1
        telemetry.BROKER_CONNECTED.labels(SOURCE).set(1)
        log.info(
            "connected to broker",
            extra={
                "event": "mqtt.connected",
                "session_present": bool(flags.session_present),
                "client_id": self.config.client_id,
            },
        )
        if self.config.mqtt5:
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe(subscription(self.config.share_group), options=options)
        else:
            client.subscribe(subscription(None), qos=1)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        telemetry.BROKER_CONNECTED.labels(SOURCE).set(0)
        self._disconnected.set()
        if not self._stop.is_set():
            log.warning(
                "disconnected from broker; reconnecting (unacknowledged messages will be delivered again)",
                extra={"event": "mqtt.disconnected", "reason": str(reason_code)},
            )

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        for rc in reason_codes:
            if rc.is_failure:
                log.error(
                    "subscription refused; the service account needs read access to infra/v1/#",
                    extra={"event": "mqtt.subscribe_refused", "reason": str(rc)},
                )
            else:
                log.info("subscribed", extra={"event": "mqtt.subscribed", "qos": rc.value})

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """paho's dispatch, for what BufferedClient leaves to paho (QoS 2, unusual packets)."""
        self._on_publish(msg._topic, msg.payload, msg.mid, msg.qos)

    def _on_publish(self, topic_bytes: bytes, payload: bytes | bytearray, mid: int, qos: int) -> None:
        """One received PUBLISH → a pending message in the intake queue (network thread; never raises)."""
        if self._stop.is_set():
            return  # not acknowledged: the broker delivers it again to our next session
        try:
            pending = to_pending(topic_text(topic_bytes), payload)
        except Exception as exc:  # never let a message break the network loop
            log.exception("could not read message", extra={"event": "mqtt.unreadable"})
            pending = PendingMessage(
                origin=repr(topic_bytes),
                operator=None,
                metric=None,
                rejection=Rejection("payload", "", f"message could not be read ({exc})", raw_payload_text(payload)),
            )
        pending.ack = partial(self._ack, (self._generation, mid, qos))
        self._received += 1  # reported in bulk by the main thread: a locked counter per message costs
        if not self.queue.put(pending, len(payload), abandon=self._stop.is_set):
            _IN_FLIGHT.dec()

    def _ack(self, receipt: tuple[int, int, int]) -> None:
        """A stored message's acknowledgement, sent by the next `_flush_acks` (the list is swapped there)."""
        self._acks.append(receipt)

    def _flush_acks(self) -> None:
        """Send the PUBACKs of the messages the delivery acknowledged (after their commit), in order, as one
        write instead of one queued packet and one wake-up of the network thread each."""
        acks, self._acks = self._acks, []
        if not acks:
            return
        _IN_FLIGHT.dec(len(acks))
        try:
            self._send_acks(acks)
        except Exception:
            log.exception("acknowledgement failed", extra={"event": "ingest.ack_failed", "messages": len(acks)})

    def _send_acks(self, acks: list[tuple[int, int, int]]) -> None:
        with self._ack_lock:  # a reconnect cannot slip in between the check and the PUBACKs
            # Received on an earlier connection: the broker has already sent it again on this one, and that
            # copy is acknowledged when it is stored; acknowledging the old packet id could hit a new message.
            mids = [mid for generation, mid, qos in acks if qos == 1 and generation == self._generation]
            if len(mids) == 1:
                self.client.ack(mids[0], 1)
            elif mids:
                packets = b"".join(struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids)
                self.client._packet_queue(_PUBACK, packets, 0, 0)  # as paho's ack() queues a single PUBACK

    def _publish_rejections(self, message: PendingMessage, batch_id: int | None) -> None:
        if not message.operator:
            return
        topic = rejects_topic(message.operator)
        for report in reject_reports(message, batch_id):
            self.client.publish(topic, json.dumps(report, ensure_ascii=False), qos=1)
            telemetry.REJECTS_PUBLISHED.labels(SOURCE).inc()
