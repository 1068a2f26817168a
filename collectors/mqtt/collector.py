"""The MQTT ingest service: wires the session (collectors.mqtt.session), the intake queue
(collectors.mqtt.intake) and the acknowledge-after-commit delivery (ingest.delivery) into one loop that
runs until SIGTERM, reports rejections on `infra/v1/{operator}/_rejects` and logs progress.

Threads: paho's network loop turns each received PUBLISH into a pending message in the bounded intake
queue; a preparing thread (`read_ahead`) batches them (by size and by time) and prepares each batch
(`Delivery.prepare`: frames, validation, COPY text); the main thread has the delivery store it, report
rejections and then acknowledge, while the next batch is prepared. The broker never has more than
`receive_maximum` unacknowledged messages out to us, so a slow database slows intake instead of growing memory.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import psycopg

from collectors.mqtt.config import CollectorConfig
from collectors.mqtt.gc_tuning import tune_garbage_collector
from collectors.mqtt.intake import IntakeQueue, next_batch
from collectors.mqtt.messages import raw_payload_text, reject_reports, rejects_topic, subscription, to_pending
from collectors.mqtt.session import SOURCE, MqttSession
from collectors.mqtt.wire import topic_text
from ingest import telemetry
from ingest.ahead import read_ahead
from ingest.delivery import Delivery, DeliveryResult, PendingMessage, PreparedDelivery
from ingest.report import BatchReport, Rejection
from storage.db import connect

log = logging.getLogger(__name__)
_RECEIVED = telemetry.MESSAGES_RECEIVED.labels(SOURCE)
_IN_FLIGHT = telemetry.IN_FLIGHT.labels(SOURCE)


class MqttCollector:
    """Runs until `stop()` (or SIGTERM/SIGINT): receive, batch, store, report rejections, acknowledge."""

    def __init__(self, config: CollectorConfig, connect: Callable[[], psycopg.Connection] | None = None) -> None:
        self.config = config
        self.queue = IntakeQueue(2 * config.receive_maximum, config.max_buffered_bytes)
        self._stop = threading.Event()
        self._stop_at = 0.0
        self._totals = BatchReport()
        self._acknowledged = 0
        self._last_progress = time.monotonic()
        self._received = 0  # counted by the network thread ...
        self._received_reported = 0  # ... and added to the Prometheus counters by the main thread
        self.session = MqttSession(config, on_publish=self._on_publish, stopping=self._stop.is_set)
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
                "broker": f"{self.session.endpoint.host}:{self.session.endpoint.port}",
                "client_id": c.client_id,
                "subscription": subscription(c.share_group),
            },
        )
        self.session.start()
        tune_garbage_collector()
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
            self.session.close()  # after the last acknowledgements, so they go out first
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

    # -- one batch -----------------------------------------------------------------------------------

    def _deliver(self, batch: PreparedDelivery) -> DeliveryResult | None:
        self._report_received()
        try:
            result = self.delivery.deliver(batch)
        finally:
            _IN_FLIGHT.dec(self.session.flush_acks())
        if result is not None:
            self._totals += result.report.counts()  # counts only: the rejections themselves are not kept
            self._acknowledged += result.acknowledged
        self._log_progress()
        return result

    def _report_received(self) -> None:
        received = self._received
        if received != self._received_reported:
            _RECEIVED.inc(received - self._received_reported)
            _IN_FLIGHT.inc(received - self._received_reported)
            self._received_reported = received

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

    def _connect_database(self) -> psycopg.Connection:
        return connect(
            self.config.database_url,
            connect_timeout=5,
            application_name=f"infrawatch-{self.config.client_id}"[:63],
            keepalives=1,
            keepalives_idle=30,
        )

    # -- intake (network thread) and rejections --------------------------------------------------------

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
        pending.ack = self.session.receipt(mid, qos)
        self._received += 1  # reported in bulk by the main thread: a locked counter per message costs
        if not self.queue.put(pending, len(payload), abandon=self._stop.is_set):
            _IN_FLIGHT.dec()

    def _publish_rejections(self, message: PendingMessage, batch_id: int | None) -> None:
        if not message.operator:
            return
        topic = rejects_topic(message.operator)
        for report in reject_reports(message, batch_id):
            self.session.publish(topic, json.dumps(report, ensure_ascii=False))
            telemetry.REJECTS_PUBLISHED.labels(SOURCE).inc()
