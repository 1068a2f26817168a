"""MQTT topics and payloads (docs/interface.md §5) → pending messages for the delivery; rejections → `_rejects` reports.

Pure functions, no I/O. The operator comes from the topic only (the broker's ACL ties it to the client's
username); whatever the payload says about the operator is checked against it by the validation.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from ingest.delivery import PendingMessage
from ingest.report import Rejection
from ingest.text import bounded_int
from reference.catalogue import METRICS
from reference.operators import is_valid_operator_id

TOPIC_ROOT = "infra/v1"
REJECTS = "_rejects"
MAX_PAYLOAD_BYTES = 256 * 1024
RAW_KEEP_CHARS = 4096
#: At most this many rejections of one message are published on `_rejects` (all are kept in quarantine).
MAX_REJECT_REPORTS = 1000

#: One decoder for every payload: json.loads with an argument builds a new one per call, a tenth of a
#: single-observation message's cost. A 5000-digit integer is one bad item, not a bad message (bounded_int).
_PAYLOAD_DECODER = json.JSONDecoder(parse_int=bounded_int)


def _decode_json(text: str) -> Any:
    """json.loads(text, parse_int=bounded_int), with the decoder made once."""
    if text.startswith("\ufeff"):  # as json.loads refuses it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _PAYLOAD_DECODER.decode(text)


def subscription(share_group: str | None) -> str:
    """The topic filter the service subscribes to, shared among a group's processes if named."""
    topic = f"{TOPIC_ROOT}/+/+"
    return f"$share/{share_group}/{topic}" if share_group else topic


def rejects_topic(operator: str) -> str:
    return f"{TOPIC_ROOT}/{operator}/{REJECTS}"


@lru_cache(maxsize=4096)
def _topic_facts(topic: str) -> tuple[bool, str, str, bool, bool]:
    """(well formed, operator, metric, operator id valid, metric known) of a topic; topics repeat, so cached."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        return False, "", "", False, False
    return True, parts[2], parts[3], is_valid_operator_id(parts[2]), parts[3] in METRICS


def to_pending(topic: str, payload: bytes | bytearray) -> PendingMessage:
    """One MQTT message → the items to store, or one rejection of the whole message, or ignore (`_rejects`)."""
    well_formed, operator, metric, operator_valid, metric_known = _topic_facts(topic)
    if not well_formed:
        return _refused(topic, None, None, "topic", f"topic {topic!r} is not {TOPIC_ROOT}/<operator>/<metric>", payload)
    if metric == REJECTS:
        return PendingMessage(origin=topic, operator=operator, metric=None, ignore=True)
    if not operator_valid:
        return _refused(
            topic,
            None,
            metric,
            "operator",
            f"operator {operator!r} in the topic is not a valid operator id (lower-case letters, digits, _)",
            payload,
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _refused(
            topic,
            operator,
            metric,
            "",
            f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES} (256 KiB): "
            "send the observations in several smaller messages",
            payload,
        )
    if not metric_known:
        return _refused(
            topic,
            operator,
            metric,
            "metric",
            f"unknown metric {metric!r} in the topic; see GET /v1/indicators for the catalogue",
            payload,
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _refused(
            topic, operator, metric, "", f"payload is not valid UTF-8 (bad byte at offset {exc.start})", payload
        )
    try:
        decoded = _decode_json(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        return _refused(topic, operator, metric, "", f"payload is not valid JSON: {reason}{where}", payload)
    if isinstance(decoded, dict):
        items: list[Any] = [decoded]
    elif isinstance(decoded, list):
        items = decoded
    else:
        return _refused(
            topic,
            operator,
            metric,
            "",
            f"payload is a JSON {type(decoded).__name__}; send an object with ts, region, value or an array of them",
            payload,
        )
    return PendingMessage(origin=topic, operator=operator, metric=metric, items=items)


def raw_payload_text(payload: bytes | bytearray) -> str:
    """Payload bytes as storable text: invalid UTF-8 replaced, NUL escaped, long payloads cut with a note."""
    text = payload[: RAW_KEEP_CHARS * 4].decode("utf-8", errors="replace").replace("\x00", "\\u0000")
    if len(text) > RAW_KEEP_CHARS or len(payload) > RAW_KEEP_CHARS * 4:
        text = text[:RAW_KEEP_CHARS] + f"… [cut; {len(payload)} bytes in all]"
    return text


def reject_reports(message: PendingMessage, batch_id: int | None) -> list[dict[str, Any]]:
    """The JSON objects published on `infra/v1/{operator}/_rejects` for one message's rejections."""
    reports: list[dict[str, Any]] = [
        {
            "topic": message.origin,
            "index": r.index,
            "field": r.field,
            "reason": r.reason,
            "raw": r.raw[:1000],
            "batch_id": batch_id,
        }
        for r in message.rejections[:MAX_REJECT_REPORTS]
    ]
    more = len(message.rejections) - MAX_REJECT_REPORTS
    if more > 0:
        reports.append(
            {
                "topic": message.origin,
                "index": None,
                "field": "",
                "reason": f"{more} more rejections in this message are not listed; all are kept in quarantine",
                "raw": "",
                "batch_id": batch_id,
            }
        )
    return reports


def _refused(
    topic: str, operator: str | None, metric: str | None, field: str, reason: str, payload: bytes | bytearray
) -> PendingMessage:
    rejection = Rejection(f"{topic} payload", field, reason, raw_payload_text(payload))
    return PendingMessage(origin=topic, operator=operator, metric=metric, rejection=rejection)
