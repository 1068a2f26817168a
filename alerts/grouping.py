"""Notifications by group, as Alertmanager sends them: an alert's group within its rule (`group_by` labels of
its scope), when a group is due a message (`group_wait`, `group_interval`, `repeat`), and the one message a
group gets, listing its alerts with counts. Pure functions first; `flush_groups` is the I/O edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.lifecycle import scope_key
from alerts.rules import Rule, severity_rank
from storage.transactions import owns_transaction

Due = Literal["changes", "reminder"]


def group_labels(scope: Mapping[str, Any], group_by: list[str]) -> dict[str, Any]:
    """The group_by labels an alert's scope has (a target alert has no operator: its rule's one group)."""
    return {k: scope[k] for k in group_by if scope.get(k) not in (None, "")}


def group_key(scope: Mapping[str, Any], group_by: list[str]) -> str:
    return scope_key(group_labels(scope, group_by))


def message_due(
    *,
    dirty_since: datetime | None,
    last_sent_at: datetime | None,
    now: datetime,
    group_wait_s: float,
    group_interval_s: float,
    repeat_s: float,
    unacknowledged_firing: bool,
) -> Due | None:
    """Whether a group gets a message now: its changes once `group_wait` has passed since the first one (a
    group never notified) or `group_interval` since its last message; otherwise a reminder every `repeat`
    while some firing alert of it is unacknowledged."""
    if dirty_since is not None:
        if last_sent_at is None:
            return "changes" if (now - dirty_since).total_seconds() >= group_wait_s else None
        return "changes" if (now - last_sent_at).total_seconds() >= group_interval_s else None
    if repeat_s > 0 and unacknowledged_firing and last_sent_at is not None:
        return "reminder" if (now - last_sent_at).total_seconds() >= repeat_s else None
    return None


@dataclass(frozen=True, slots=True)
class Listed:
    """An alert as a group message lists it."""

    id: int
    scope: dict[str, Any]
    state: str
    severity: str
    value: float | None
    summary: str
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None = None


def build_group_message(
    rule: Rule,
    labels: Mapping[str, Any],
    firing: list[Listed],
    resolved: list[Listed],
    *,
    since: datetime | None,
    due: Due,
    now: datetime,
) -> dict[str, Any]:
    """The channel-neutral message of one group: every firing alert (new ones, fired after `since`, first),
    the alerts resolved since the last message with their value at resolution, and the counts."""
    new = [a for a in firing if since is None or (a.fired_at is not None and a.fired_at > since)]
    old = [a for a in firing if a not in new]
    listed = [*new, *old, *resolved]
    if due == "reminder":
        event = "reminder"
    else:
        event = "firing" if firing else "resolved"
    severity = max((a.severity for a in (firing or resolved)), key=severity_rank, default=rule.severity)
    return {
        "event": event,
        "rule": {"id": rule.id, "title": rule.display_title(), "kind": rule.kind},
        "group": dict(labels),
        "severity": severity,
        "at": now.isoformat(),
        "count": len(listed),
        "counts": {"firing": len(firing), "new": len(new), "resolved": len(resolved)},
        "alerts": [
            {
                "id": a.id,
                "scope": a.scope,
                "state": a.state,
                "new": a in new,
                "severity": a.severity,
                "value": a.value,
                "summary": a.summary,
                "started_at": a.started_at.isoformat(),
                "fired_at": a.fired_at.isoformat() if a.fired_at else None,
                "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
            }
            for a in listed
        ],
    }


# --- the I/O edge ---------------------------------------------------------------------------------------


def mark_changed(conn: psycopg.Connection, rule: Rule, scope: Mapping[str, Any], now: datetime) -> None:
    """An alert of this rule fired or resolved: its group has news to send."""
    labels = group_labels(scope, rule.group_by)
    conn.execute(
        "INSERT INTO alert_group (rule_id, group_key, labels, dirty_since) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (rule_id, group_key) DO UPDATE SET labels = EXCLUDED.labels,"
        " dirty_since = coalesce(alert_group.dirty_since, EXCLUDED.dirty_since)",
        (rule.id, scope_key(labels), Jsonb(labels), now),
    )


_LISTED = "id, scope, state, severity, value, summary, started_at, fired_at, resolved_at, acknowledged_at"


@owns_transaction
def flush_groups(
    conn: psycopg.Connection, now: datetime, channels: list[str], rules: Mapping[str, Rule] | None = None
) -> int:
    """Queue the message of every group that is due one, one per channel; returns how many were queued.

    Each group is locked while it is flushed (SKIP LOCKED) and its last message time is written in the same
    transaction as the notifications, so two schedulers never send a group's message twice. `rules` adds
    rules not (or not yet) stored; stored enabled rules are read from the database.

    Owns its transactions, one per group, so that a group's lock is held only while it is flushed and a
    group flushed stays flushed: on an idle connection each commits; inside a caller's transaction each
    is a savepoint and nothing is committed.
    """
    from alerts.store import list_rules

    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        known = {r.id: r for r in list_rules(conn, enabled_only=True)}
        groups = cur.execute(
            "SELECT rule_id, group_key FROM alert_group"
            " WHERE dirty_since IS NOT NULL OR last_sent_at IS NOT NULL ORDER BY rule_id, group_key"
        ).fetchall()
    known.update(rules or {})
    queued = 0
    for g in groups:
        rule = known.get(g["rule_id"])
        if rule is None:
            continue
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT labels, dirty_since, last_sent_at FROM alert_group WHERE rule_id = %s AND group_key = %s"
                " FOR UPDATE SKIP LOCKED",
                (g["rule_id"], g["group_key"]),
            ).fetchone()
            if row is None:
                continue
            since = row["last_sent_at"]
            alerts = [
                Listed(**a)
                for a in cur.execute(
                    f"SELECT {_LISTED} FROM alert WHERE rule_id = %s AND group_key = %s AND NOT quiet"
                    " AND (state = 'firing' OR (state = 'resolved' AND fired_at IS NOT NULL"
                    " AND resolved_at > coalesce(%s, '-infinity'::timestamptz) AND resolved_at <= %s))"
                    " ORDER BY fired_at, id",
                    (rule.id, g["group_key"], since, now),
                )
            ]
            firing = [a for a in alerts if a.state == "firing"]
            resolved = [a for a in alerts if a.state == "resolved"]
            due = message_due(
                dirty_since=row["dirty_since"],
                last_sent_at=since,
                now=now,
                group_wait_s=rule.group_wait_s,
                group_interval_s=rule.group_interval_s,
                repeat_s=rule.repeat_s,
                unacknowledged_firing=any(a.acknowledged_at is None for a in firing),
            )
            if due is None:
                continue
            if not firing and not resolved:  # what changed never fired (or is quiet): nothing to say
                cur.execute(
                    "UPDATE alert_group SET dirty_since = NULL WHERE rule_id = %s AND group_key = %s",
                    (rule.id, g["group_key"]),
                )
                continue
            message = build_group_message(rule, row["labels"], firing, resolved, since=since, due=due, now=now)
            targets = channels if rule.channels is None else [c for c in rule.channels if c in channels]
            ids = [a.id for a in alerts]
            for channel in targets:
                cur.execute(
                    "INSERT INTO notification (channel, event, rule_id, group_key, alert_ids, message, created_at,"
                    " next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (channel, message["event"], rule.id, g["group_key"], ids, Jsonb(message), now, now),
                )
                queued += 1
            cur.execute(
                "UPDATE alert_group SET dirty_since = NULL, last_sent_at = %s WHERE rule_id = %s AND group_key = %s",
                (now, rule.id, g["group_key"]),
            )
            cur.execute("UPDATE alert SET last_notified_at = %s WHERE id = ANY(%s)", (now, ids))
            if due == "reminder":
                for a in firing:
                    cur.execute(
                        "INSERT INTO alert_event (alert_id, at, event, state, value, note)"
                        " VALUES (%s, %s, 'reminder', 'firing', %s, %s)",
                        (a.id, now, a.value, a.summary),
                    )
    return queued
