"""Acknowledge only after commit or quarantine: the one place a collector's messages become stored data.

A collector hands `Delivery.deliver` a list of received messages (each with its own `ack` callback). All of
their observations go through the `IngestPipeline` as one batch per operator; only when every batch has
committed (valid rows stored, rejections quarantined) are the messages acknowledged, in the order received.
A database that is down or drops the connection makes `deliver` reconnect and retry with backoff; it never
acknowledges a message whose observations are not committed. Re-delivery after a crash is harmless: the
pipeline merges by identity, so a message stored twice is counted as duplicates and stored once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from ingest import telemetry
from ingest.pipeline import IngestPipeline, PreparedBatch
from ingest.report import BatchReport, Rejection
from ingest.text import raw_text
from ingest.validate import SharedItems, frame_from_items

log = logging.getLogger(__name__)

#: Errors after which the connection is dropped and the batch retried: the data was not (known to be) stored.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)


def _no_ack() -> None:
    return None


@dataclass(slots=True)
class PendingMessage:
    """One received message waiting to be stored and then acknowledged.

    `origin` names where it came from (the MQTT topic) and prefixes quarantine locations. `operator` is the
    trusted sender (from the topic or key), never the payload. `metric` is the metric the channel names
    (MQTT topic) or None when items carry their own. `rejection` refuses the whole message before
    validation (bad JSON, too large, bad topic). `ignore` messages are acknowledged without storing anything.
    """

    origin: str
    operator: str | None
    metric: str | None
    items: list[Any] = field(default_factory=list)
    rejection: Rejection | None = None
    ack: Callable[[], None] = _no_ack
    ignore: bool = False
    rejections: list[Rejection] = field(default_factory=list)  # filled by deliver()

    @property
    def size(self) -> int:
        """Observations this message weighs in a batch (at least 1)."""
        return max(1, len(self.items))


@dataclass(slots=True)
class PreparedGroup:
    """One operator's messages as one pipeline batch (`prepared`), with what maps each rejection back to its
    message."""

    operator: str | None
    upstream: list[Rejection]  # refused before validation ...
    owner: list[PendingMessage]  # ... and the message each belongs to
    item_message: list[PendingMessage]  # per frame item position: its message ...
    item_index: list[int]  # ... and its index within that message
    prepared: PreparedBatch

    @property
    def batch(self) -> PreparedBatch | None:
        """The batch validated ahead; None while its validation waits for the database (an operator the
        pipeline's cache did not know yet)."""
        return self.prepared if self.prepared.validated else None


@dataclass(slots=True)
class PreparedDelivery:
    """Messages with their groups prepared (`Delivery.prepare`), ready for `Delivery.deliver`."""

    messages: list[PendingMessage]
    groups: dict[int, PreparedGroup]  # by id() of the group's first message; absent = prepare when stored


@dataclass(slots=True)
class DeliveryResult:
    report: BatchReport
    acknowledged: int
    held: int  # messages left unacknowledged because they could not even be quarantined
    attempts: int


class Delivery:
    """Stores batches of pending messages through the pipeline, then acknowledges them; retries on database errors."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        *,
        pipeline: IngestPipeline | None = None,
        source: str = "mqtt",
        on_rejected: Callable[[PendingMessage, int | None], None] | None = None,
        should_give_up: Callable[[], bool] = lambda: False,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        poison_attempts: int = 3,
        hold_unstorable: bool = False,
    ) -> None:
        self._connect = connect
        self.pipeline = pipeline or IngestPipeline()
        self.source = source
        self.on_rejected = on_rejected
        self.should_give_up = should_give_up
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        #: Tries of a message that fails for a reason that is not the database being unreachable, before it
        #: is quarantined whole (dead-lettered).
        self.poison_attempts = max(1, poison_attempts)
        #: Leave a message that could not even be quarantined unacknowledged (the old behaviour; it then
        #: holds a Receive Maximum slot until the next session). Off: it is logged whole and acknowledged.
        self.hold_unstorable = hold_unstorable
        self._conn: psycopg.Connection | None = None

    # -- connection -----------------------------------------------------------------------------

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # -- the one operation --------------------------------------------------------------------

    def prepare(self, messages: list[PendingMessage]) -> PreparedDelivery:
        """The pure part of `deliver` (grouping, frames, validation), for a thread that prepares the next
        batch while the previous one is stored. Nothing is stored or acknowledged here."""
        prepared: dict[int, PreparedGroup] = {}
        for operator, group in _groups(messages):
            try:
                prepared[id(group[0])] = self._prepare_group(operator, group)
            except Exception:  # deliver() prepares it again and splits or quarantines what fails
                log.debug("could not prepare a group ahead", exc_info=True)
        return PreparedDelivery(messages, prepared)

    def deliver(self, messages: list[PendingMessage] | PreparedDelivery) -> DeliveryResult | None:
        """Commit every message's observations and rejections, then acknowledge them in order.

        Returns None, having acknowledged nothing, when `should_give_up()` turns true while the database is
        unreachable (shutdown); the sender then delivers those messages again.
        """
        ready: dict[int, PreparedGroup] = {}
        if isinstance(messages, PreparedDelivery):
            ready = messages.groups
            messages = messages.messages
        total = BatchReport()
        for m in messages:
            m.rejections = []
        todo = _groups(messages)
        held: list[PendingMessage] = []
        attempts = 0
        backoff = self.backoff_initial_s
        while todo:
            attempts += 1
            try:
                conn = self.connection()
                while todo:
                    operator, group = todo[0]
                    for m in group:  # a retried group starts afresh
                        m.rejections = []
                    group_report = BatchReport()
                    group_held: list[PendingMessage] = []
                    self._store_group(conn, operator, group, group_report, group_held, ready.get(id(group[0])))
                    total += group_report
                    held.extend(group_held)
                    todo.pop(0)
            except TRANSIENT_ERRORS as exc:
                self.close()
                telemetry.DATABASE_RETRIES.labels(self.source).inc()
                log.warning(
                    "database unavailable; messages stay unacknowledged and the batch will be retried",
                    extra={
                        "event": "ingest.db_retry",
                        "error": str(exc).strip()[:300],
                        "attempt": attempts,
                        "retry_in_s": round(backoff, 2),
                        "messages": sum(len(g) for _, g in todo),
                    },
                )
                if self.should_give_up():
                    log.warning(
                        "giving up on the batch without acknowledging it; the broker will deliver it again",
                        extra={"event": "ingest.gave_up", "messages": len(messages)},
                    )
                    return None
                self._sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
        if attempts > 1:
            log.info(
                "database reachable again; batch stored", extra={"event": "ingest.db_recovered", "attempts": attempts}
            )
        acknowledged = 0
        held_ids = {id(m) for m in held}
        for m in messages:
            if m.rejections and self.on_rejected is not None:
                try:
                    self.on_rejected(m, total.batch_id)
                except Exception:
                    log.exception("could not report rejections", extra={"event": "ingest.reject_report_failed"})
            if id(m) in held_ids:
                continue
            try:
                m.ack()
                acknowledged += 1
            except Exception:
                log.exception("acknowledgement failed", extra={"event": "ingest.ack_failed", "origin": m.origin})
        telemetry.MESSAGES_ACKNOWLEDGED.labels(self.source).inc(acknowledged)
        return DeliveryResult(total, acknowledged, len(held), attempts)

    # -- internals ------------------------------------------------------------------------------

    def _store_group(
        self,
        conn: psycopg.Connection,
        operator: str | None,
        group: list[PendingMessage],
        total: BatchReport,
        held: list[PendingMessage],
        prepared: PreparedGroup | None = None,
    ) -> None:
        """One operator's messages as one batch; a batch that fails for a non-database reason is split."""
        try:
            self._store(conn, prepared or self._prepare_group(operator, group), total)
            return
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            _rollback(conn)
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            if len(group) > 1:
                log.warning(
                    "batch failed; storing its messages one by one",
                    extra={"event": "ingest.batch_split", "error": error, "messages": len(group)},
                )
                for m in group:
                    self._store_group(conn, operator, [m], total, held)
                return
        message = group[0]
        for attempt in range(1, self.poison_attempts):  # a bounded retry before the message is given up on
            try:
                for m in group:
                    m.rejections = []
                self._submit(conn, operator, [message], total)
                return
            except TRANSIENT_ERRORS:
                raise
            except Exception as again:
                _rollback(conn)
                error = f"{type(again).__name__}: {str(again)[:200]}"
                log.warning(
                    "message failed again",
                    extra={"event": "ingest.poison_retry", "origin": message.origin, "attempt": attempt + 1},
                )
        log.error(
            "message could not be stored; quarantining it whole",
            extra={"event": "ingest.poison_message", "origin": message.origin, "error": error},
        )
        reason = (
            f"the message could not be processed after {self.poison_attempts} attempts ({error}); "
            "check its content and send it again"
        )
        # Dead letter: the whole message into quarantine; if even that fails, once more with its raw text
        # reduced to ASCII; if that fails too, the message is acknowledged and logged whole (never held).
        for raw in (_raw_text(message.items), ascii(_raw_text(message.items))[:4096]):
            poison = PendingMessage(
                origin=message.origin,
                operator=message.operator,
                metric=message.metric,
                rejection=Rejection(f"{message.origin} payload", "", reason, raw),
            )
            try:
                self._submit(conn, operator, [poison], total)
                message.rejections = poison.rejections
                return
            except TRANSIENT_ERRORS:
                raise
            except Exception:
                _rollback(conn)
                log.exception(
                    "message could not be quarantined",
                    extra={"event": "ingest.quarantine_failed", "origin": message.origin},
                )
        telemetry.DEAD_LETTERED.labels(self.source).inc()
        log.error(
            "message neither stored nor quarantined; acknowledging it so it cannot stall ingest (payload logged)",
            extra={
                "event": "ingest.dead_letter",
                "origin": message.origin,
                "operator": message.operator,
                "error": error,
                "raw": ascii(_raw_text(message.items))[:65536],
            },
        )
        if self.hold_unstorable:
            held.append(message)

    def _prepare_group(self, operator: str | None, group: list[PendingMessage]) -> PreparedGroup:
        """Build one frame from the group's items (locations say topic and index) and prepare it as one
        pipeline batch. No database."""
        upstream: list[Rejection] = []  # refused before validation, with the message each belongs to
        owner: list[PendingMessage] = []
        flat: list[Any] = []  # items as validated (with the channel's metric filled in)
        original: list[Any] = []  # the same items as received, for the quarantine's raw text
        item_message: list[PendingMessage] = []  # for each flat item: its message ...
        item_origin: list[str] = []
        item_index: list[int] = []  # ... and its index within that message
        for m in group:
            if m.rejection is not None or operator is None:  # refused whole
                upstream.append(
                    m.rejection
                    or Rejection(
                        f"{m.origin} payload", "operator", "the message names no valid operator", _raw_text(m.items)
                    )
                )
                owner.append(m)
                continue
            for i, item in enumerate(m.items):
                if m.metric is not None and isinstance(item, Mapping):
                    if "metric" in item and item["metric"] != m.metric:
                        upstream.append(
                            Rejection(
                                f"{m.origin} index {i}",
                                "metric",
                                f"metric {item['metric']!r} in the payload does not match the topic's metric "
                                f"{m.metric!r}",
                                _raw_text(item),
                                index=i,
                            )
                        )
                        owner.append(m)
                        continue
                    flat.append({**item, "metric": m.metric})
                else:
                    flat.append(item)
                original.append(item)
                item_message.append(m)
                item_origin.append(m.origin)
                item_index.append(i)
        frame, structural = frame_from_items(flat, operator=operator or "", metric=None, location_prefix="index")
        for r in structural:  # positions in `flat` -> the message's own topic and index
            g = int(r.index or 0)
            r.location, r.raw, r.index = (
                f"{item_origin[g]} index {item_index[g]}",
                _raw_text(original[g]),
                item_index[g],
            )
            upstream.append(r)
            owner.append(item_message[g])
        if len(frame):
            frame.attrs["items"] = SharedItems(original)
            g_arr = frame["index"].to_numpy(dtype=np.int64)
            origin_arr = np.array(item_origin, dtype=object)[g_arr]
            index_arr = np.array(item_index, dtype=np.int64)[g_arr].astype(str).astype(object)
            frame["location"] = origin_arr + " index " + index_arr
        batch = self.pipeline.prepare(frame, upstream, operator=operator)  # validated now if it can be
        return PreparedGroup(operator, upstream, owner, item_message, item_index, batch)

    def _submit(
        self, conn: psycopg.Connection, operator: str | None, group: list[PendingMessage], total: BatchReport
    ) -> None:
        self._store(conn, self._prepare_group(operator, group), total)

    def _store(self, conn: psycopg.Connection, prepared: PreparedGroup, total: BatchReport) -> None:
        """Commit one prepared group; its rejections go back to the messages they came from."""
        started = time.perf_counter()
        report = self.pipeline.store(conn, prepared.prepared, source=self.source)
        telemetry.record_batch(report, self.source, time.perf_counter() - started)
        upstream = len(prepared.upstream)
        for r, m in zip(report.rejections[:upstream], prepared.owner, strict=True):
            m.rejections.append(r)
        for r in report.rejections[upstream:]:
            g = int(r.index or 0)
            r.index = prepared.item_index[g]
            prepared.item_message[g].rejections.append(r)
        total += report


def _groups(messages: list[PendingMessage]) -> list[tuple[str | None, list[PendingMessage]]]:
    """Messages to store, one group per operator (first-seen order); ignored messages are left out."""
    groups: dict[str | None, list[PendingMessage]] = {}
    for m in messages:
        if not m.ignore:
            groups.setdefault(m.operator, []).append(m)
    return list(groups.items())


def _rollback(conn: psycopg.Connection) -> None:
    try:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
    except TRANSIENT_ERRORS:
        raise
    except Exception:  # pragma: no cover
        log.exception("rollback failed", extra={"event": "ingest.rollback_failed"})


def _raw_text(value: Any) -> str:
    return raw_text(value, limit=1 << 20)


__all__ = ["TRANSIENT_ERRORS", "Delivery", "DeliveryResult", "PendingMessage", "PreparedDelivery"]
