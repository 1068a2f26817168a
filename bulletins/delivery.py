"""Sending stored bulletins through the notification channels: an e-mail carries the files as attachments,
a DingTalk / WeCom robot or webhook gets a message with the link to the console's bulletins page.
Each (bulletin, channel) is sent once; a failure is retried on the next run, up to MAX_ATTEMPTS."""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from typing import Any

import psycopg

from bulletins.ranking import STATUS_ORDER, STATUS_ZH
from bulletins.store import StoredBulletin, get_bulletin, read_file
from storage.transactions import owns_transaction

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


def queue_deliveries(conn: psycopg.Connection, bulletin_id: int, channels: list[str] | None = None) -> int:
    """One pending delivery per enabled channel (or per named channel), in the caller's transaction;
    returns how many were queued."""
    sql = (
        "INSERT INTO bulletin_delivery (bulletin_id, channel) SELECT %s, name FROM notification_channel"
        " WHERE enabled AND (%s::text[] IS NULL OR name = ANY(%s::text[])) ON CONFLICT DO NOTHING"
    )
    return conn.execute(sql, (bulletin_id, channels, channels)).rowcount


def link_of(public_url: str, b: StoredBulletin) -> str:
    base = public_url.rstrip("/")
    return f"{base}/bulletins#bulletin-{b.id}" if base else f"/bulletins#bulletin-{b.id}"


def message_of(b: StoredBulletin, link: str, at: datetime) -> dict[str, Any]:
    """The channel-neutral message of a bulletin (alerts.notifiers renders event "bulletin")."""
    counts = b.summary.get("counts") or {}
    assert isinstance(counts, dict)
    parts = [f"{STATUS_ZH[s]}{counts[s]}项" for s in STATUS_ORDER if counts.get(s)]
    period = str(b.summary.get("title") or b.period)
    text = f"{period}通报已生成（数据截至{b.period_end}）：" + ("、".join(parts) or "本期无监测数据") + "。"
    return {
        "event": "bulletin",
        "severity": "info",
        "title": f"[通报] {period}",
        "text": text,
        "link": link,
        "bulletin": {"id": b.id, "period": b.period, "region": b.region, "files": b.files},
        "at": at.isoformat(),
    }


def _attachments(conn: psycopg.Connection, b: StoredBulletin) -> list[dict[str, str]]:
    out = []
    for kind in b.files:
        f = read_file(conn, b.id, kind)
        if f is not None:
            out.append(
                {
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "data_b64": base64.b64encode(f.content).decode("ascii"),
                }
            )
    return out


@owns_transaction
def deliver_bulletins(conn: psycopg.Connection, now: datetime, public_url: str = "") -> tuple[int, int]:
    """Send every pending bulletin delivery once; returns (sent, failed this run).

    Owns its transactions, one per delivery, because a send cannot be taken back: on an idle connection
    each delivery is locked (SKIP LOCKED, so parallel schedulers never send it twice), sent, recorded and
    committed before the next; inside a caller's transaction each is a savepoint, and a rollback by the
    caller forgets the sends (a later run makes them again)."""
    from alerts.notifiers import send

    sent = failed = 0
    with conn.transaction():
        pending = conn.execute(
            "SELECT bulletin_id, channel FROM bulletin_delivery WHERE state = 'pending' ORDER BY bulletin_id, channel"
        ).fetchall()
    for key in pending:
        with conn.transaction():
            row = conn.execute(
                "SELECT d.bulletin_id, d.channel, d.attempts, c.kind, c.config, c.enabled FROM bulletin_delivery d"
                " LEFT JOIN notification_channel c ON c.name = d.channel"
                " WHERE d.bulletin_id = %s AND d.channel = %s AND d.state = 'pending' FOR UPDATE OF d SKIP LOCKED",
                key,
            ).fetchone()
            if row is None:  # sent meanwhile, or being sent by another scheduler
                continue
            bid, channel, attempts, kind, config, enabled = row
            b = get_bulletin(conn, bid)
            attempts += 1
            error: str | None = None
            try:
                if b is None or kind is None or not enabled:
                    raise RuntimeError(f"channel {channel!r} is no longer configured or is disabled")
                message = message_of(b, link_of(public_url, b), now)
                if kind == "email":
                    message["attachments"] = _attachments(conn, b)
                send(kind, config or {}, message)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000]
            state = "sent" if error is None else ("failed" if attempts >= MAX_ATTEMPTS or kind is None else "pending")
            conn.execute(
                "UPDATE bulletin_delivery SET attempts = %s, last_error = %s, state = %s, sent_at = %s"
                " WHERE bulletin_id = %s AND channel = %s",
                (attempts, error, state, now if error is None else None, bid, channel),
            )
        if error is None:
            sent += 1
        else:
            failed += 1
            log.warning(
                "bulletin delivery failed",
                extra={"event": "bulletins.delivery_failed", "bulletin": bid, "channel": channel, "error": error},
            )
    return sent, failed
