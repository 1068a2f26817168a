"""Notification delivery: render a queued message for its channel (generic JSON webhook, DingTalk robot, WeCom
robot, SMTP e-mail), send it, and retry failures with exponential backoff. Deliveries stay visible in the
`notification` table with their attempts and last error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import smtplib
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import psycopg

from core.planzone import plan_tz
from storage.transactions import owns_transaction

log = logging.getLogger(__name__)

PLAN_TZ = plan_tz()  # INFRAWATCH_TIMEZONE
MAX_LISTED = 20
_EVENT_LABEL = {"firing": "FIRING", "resolved": "RESOLVED", "reminder": "REMINDER"}
_EVENT_ZH = {"firing": "告警", "resolved": "恢复", "reminder": "提醒"}


class DeliveryError(RuntimeError):
    """A channel refused or could not take a message; the delivery is retried later."""


# --- rendering (pure) -----------------------------------------------------------------------------------


def counts_of(message: dict[str, Any]) -> str:
    """`3 firing (1 new), 2 resolved` — what a group message holds."""
    c = message.get("counts")
    if not c:
        n = message.get("count", len(message.get("alerts", [])))
        return f"{n} alerts" if n > 1 else ""
    parts = []
    if c["firing"]:
        parts.append(f"{c['firing']} firing" + (f" ({c['new']} new)" if 0 < c["new"] < c["firing"] else ""))
    if c["resolved"]:
        parts.append(f"{c['resolved']} resolved")
    return ", ".join(parts)


def title_of(message: dict[str, Any]) -> str:
    event = message["event"]
    if event == "bulletin":  # a bulletin (bulletins/): its own title, text and link
        return str(message["title"])
    group = ", ".join(f"{k} {v}" for k, v in (message.get("group") or {}).items())
    n = message.get("count", len(message.get("alerts", [])))
    counts = f" ({counts_of(message)})" if n > 1 or (message.get("counts") or {}).get("resolved") else ""
    where = f" · {group}" if group else ""
    return f"[{_EVENT_LABEL.get(event, event.upper())}·{message['severity']}] {message['rule']['title']}{where}{counts}"


def _line(a: dict[str, Any]) -> str:
    if a.get("state") == "resolved":
        return f"resolved: {a['summary']}"
    return ("new: " if a.get("new") and a.get("state") else "") + a["summary"]


def _when(message: dict[str, Any]) -> str:
    at = datetime.fromisoformat(message["at"]).astimezone(PLAN_TZ)
    return f"{at:%Y-%m-%d %H:%M} (Asia/Shanghai)"


def markdown_of(message: dict[str, Any]) -> str:
    """Markdown body used by DingTalk and WeCom (both render headings, bold and lists)."""
    event = message["event"]
    if event == "bulletin":
        return "\n".join(
            [f"### {title_of(message)}", "", str(message.get("text", "")), "", f"[查看通报]({message.get('link', '')})"]
        )
    lines = [f"### {_EVENT_ZH.get(event, '')} {title_of(message)}", ""]
    alerts = message.get("alerts", [])
    for a in alerts[:MAX_LISTED]:
        lines.append(f"- **{a['severity']}** {_line(a)}")
    if len(alerts) > MAX_LISTED:
        lines.append(f"- … and {len(alerts) - MAX_LISTED} more")
    lines += ["", f"> infrawatch · rule `{message['rule']['id']}` · {_when(message)}"]
    return "\n".join(lines)


def text_of(message: dict[str, Any]) -> str:
    """Plain text body (e-mail, text robots)."""
    if message["event"] == "bulletin":
        return "\n".join([title_of(message), "", str(message.get("text", "")), "", str(message.get("link", ""))])
    lines = [title_of(message), ""]
    alerts = message.get("alerts", [])
    for a in alerts[:MAX_LISTED]:
        lines.append(f"- [{a['severity']}] {_line(a)}")
    if len(alerts) > MAX_LISTED:
        lines.append(f"- … and {len(alerts) - MAX_LISTED} more")
    lines += ["", f"infrawatch · rule {message['rule']['id']} · {_when(message)}"]
    return "\n".join(lines)


def _truncate_bytes(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: limit - 4].decode("utf-8", errors="ignore") + " …"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot signature: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), URL-encoded."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def dingtalk_payload(message: dict[str, Any], msgtype: str = "markdown") -> dict[str, Any]:
    """DingTalk custom robot body: msgtype markdown {title, text} or text {content}."""
    if msgtype == "text":
        return {"msgtype": "text", "text": {"content": _truncate_bytes(text_of(message), 20000)}}
    return {
        "msgtype": "markdown",
        "markdown": {"title": title_of(message), "text": _truncate_bytes(markdown_of(message), 20000)},
    }


def wecom_payload(message: dict[str, Any], msgtype: str = "markdown") -> dict[str, Any]:
    """WeCom group robot body: msgtype markdown {content} (≤ 4096 bytes) or text {content} (≤ 2048 bytes)."""
    if msgtype == "text":
        return {"msgtype": "text", "text": {"content": _truncate_bytes(text_of(message), 2048)}}
    return {"msgtype": "markdown", "markdown": {"content": _truncate_bytes(markdown_of(message), 4096)}}


def webhook_payload(message: dict[str, Any]) -> dict[str, Any]:
    """Generic JSON webhook: the neutral message plus a ready title and text."""
    return {**message, "title": title_of(message), "text": text_of(message)}


# --- sending --------------------------------------------------------------------------------------------


def _setting(config: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    """A setting given directly (`key`) or through an environment variable named by `key_env`."""
    if config.get(key):
        return str(config[key])
    env = config.get(f"{key}_env")
    if env:
        value = os.environ.get(str(env))
        if value:
            return value
        if required:
            raise DeliveryError(f"environment variable {env} (the channel's {key}) is not set")
        return None
    if required:
        raise DeliveryError(f"the channel has no `{key}` (or `{key}_env`) setting")
    return None


def _post_json(url: str, body: dict[str, Any], *, robot: bool, timeout: float, headers: dict[str, str] | None) -> None:
    try:
        response = httpx.post(url, json=body, timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
    if robot:  # DingTalk and WeCom answer 200 with {"errcode": 0, "errmsg": "ok"}; anything else is a refusal
        try:
            answer = response.json()
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("errcode", 0) != 0:
            raise DeliveryError(f"robot refused: errcode {answer.get('errcode')}: {answer.get('errmsg')}")


def send(kind: str, config: dict[str, Any], message: dict[str, Any]) -> None:
    """Send one message through one channel; raises DeliveryError on any failure."""
    timeout = float(config.get("timeout_s", 10))
    if kind == "webhook":
        url = _setting(config, "url")
        assert url
        _post_json(url, webhook_payload(message), robot=False, timeout=timeout, headers=config.get("headers"))
    elif kind == "dingtalk":
        url = _setting(config, "url")
        assert url
        secret = _setting(config, "secret", required=False)
        signed = dingtalk_url(url, secret, int(time.time() * 1000))
        _post_json(
            signed,
            dingtalk_payload(message, config.get("msgtype", "markdown")),
            robot=True,
            timeout=timeout,
            headers=None,
        )
    elif kind == "wecom":
        url = _setting(config, "url")
        assert url
        _post_json(
            url, wecom_payload(message, config.get("msgtype", "markdown")), robot=True, timeout=timeout, headers=None
        )
    elif kind == "email":
        _send_email(config, message, timeout)
    else:
        raise DeliveryError(f"unknown channel kind {kind!r}")


def _send_email(config: dict[str, Any], message: dict[str, Any], timeout: float) -> None:
    host = _setting(config, "host")
    to = config.get("to") or []
    if isinstance(to, str):
        to = [to]
    if not to:
        raise DeliveryError("the e-mail channel has no `to` addresses")
    mail = EmailMessage()
    mail["Subject"] = title_of(message)
    mail["From"] = config.get("from", "infrawatch@localhost")
    mail["To"] = ", ".join(to)
    mail.set_content(text_of(message))
    for a in message.get("attachments") or []:  # files of a bulletin, base64 in the message
        maintype, _, subtype = str(a.get("content_type", "application/octet-stream")).partition("/")
        mail.add_attachment(
            base64.b64decode(a["data_b64"]),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=a["filename"],
        )
    port = int(config.get("port", 465 if config.get("ssl") else 25))
    try:
        smtp: smtplib.SMTP
        if config.get("ssl"):
            smtp = smtplib.SMTP_SSL(host or "", port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host or "", port, timeout=timeout)
        with smtp:
            if config.get("starttls"):
                smtp.starttls(context=ssl.create_default_context())
            user = _setting(config, "username", required=False)
            if user:
                smtp.login(user, _setting(config, "password") or "")
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP {host}:{port}: {exc}") from exc


# --- the delivery queue ---------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def backoff_s(attempts: int, base_s: float = 30, max_s: float = 3600) -> float:
    """Wait after the n-th failed attempt: base, 2×base, 4×base … capped."""
    return float(min(max_s, base_s * 2 ** max(attempts - 1, 0)))


@owns_transaction
def deliver_pending(
    conn: psycopg.Connection,
    now: datetime,
    *,
    max_attempts: int = 8,
    base_backoff_s: float = 30,
    max_backoff_s: float = 3600,
    limit: int = 200,
) -> DeliveryReport:
    """Queue the messages of the alert groups now due one, then send every due notification once. Each is
    locked while sent (SKIP LOCKED), so parallel schedulers never send the same message twice; a failure
    is retried after an exponential backoff, and after `max_attempts` it is marked failed (and stays
    listed with its last error).

    Owns its transactions, one per notification, because a send cannot be taken back: on an idle
    connection (the scheduler's delivery job) each send is recorded and committed as soon as it is made,
    so a later failure never makes it send again. Inside a caller's transaction each is a savepoint, and a
    rollback by the caller forgets the sends (a later run makes them again)."""
    from alerts.grouping import flush_groups
    from alerts.store import list_channels

    report = DeliveryReport()
    flush_groups(conn, now, [c.name for c in list_channels(conn, enabled_only=True)])
    for _ in range(limit):
        with conn.transaction():
            row = conn.execute(
                "SELECT n.id, n.channel, n.event, n.message, n.attempts, c.kind, c.config, c.enabled"
                " FROM notification n LEFT JOIN notification_channel c ON c.name = n.channel"
                " WHERE n.state = 'pending' AND n.next_attempt_at <= %s"
                " ORDER BY n.next_attempt_at, n.id LIMIT 1 FOR UPDATE OF n SKIP LOCKED",
                (now,),
            ).fetchone()
            if row is None:
                break
            nid, channel, event, message, attempts, kind, config, enabled = row
            attempts += 1
            error: str | None = None
            try:
                if kind is None or not enabled:
                    raise DeliveryError(f"channel {channel!r} is no longer configured or is disabled")
                send(kind, config or {}, message)
            except Exception as exc:
                error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            final = error is not None and (attempts >= max_attempts or kind is None)
            if error is None:
                conn.execute(
                    "UPDATE notification SET attempts = %s, last_error = NULL, state = 'sent', sent_at = %s"
                    " WHERE id = %s",
                    (attempts, now, nid),
                )
            else:
                conn.execute(
                    "UPDATE notification SET attempts = %s, last_error = %s, state = %s, next_attempt_at = %s"
                    " WHERE id = %s",
                    (
                        attempts,
                        error[:1000],
                        "failed" if final else "pending",
                        now + timedelta(seconds=backoff_s(attempts, base_backoff_s, max_backoff_s)),
                        nid,
                    ),
                )
        if error is None:
            report.sent += 1
            log.info(
                "notification sent",
                extra={
                    "event": "alerts.delivered",
                    "notification": nid,
                    "channel": channel,
                    "kind": kind,
                    "type": event,
                },
            )
            continue
        if final:
            report.failed += 1
        else:
            report.retrying += 1
        log.warning(
            "notification delivery failed",
            extra={
                "event": "alerts.delivery_failed",
                "notification": nid,
                "channel": channel,
                "attempts": attempts,
                "final": final,
                "error": error[:300],
            },
        )
    return report
