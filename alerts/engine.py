"""The alert engine: evaluate every rule at `now`, move alerts through their life cycle, queue notifications.

One transaction per rule: the evaluation record, the alert changes, their history and the notifications they
cause commit together, so a crash or restart never loses an alert nor notifies it twice. Alerts of one rule
that change state in the same evaluation are grouped into one notification per channel.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.conditions import ConditionUnavailable, findings_for
from alerts.lifecycle import AlertState, Finding, NotifyEvent, advance
from alerts.rules import Rule, severity_rank
from alerts.store import list_channels, list_rules

log = logging.getLogger(__name__)


def default_runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class EvaluationReport:
    rules: int = 0
    skipped: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    fired: int = 0
    resolved: int = 0
    notifications: int = 0


def evaluate(
    conn: psycopg.Connection,
    now: datetime,
    *,
    rules: list[Rule] | None = None,
    runner: str | None = None,
    interval_start: datetime | None = None,
    refresh_targets: bool = True,
) -> EvaluationReport:
    """Evaluate the enabled rules at `now` (pass it explicitly; tests move it by days).

    First brings target progress up to date (metrics.evaluate_targets + store_progress), then the rules.
    A rule whose data cannot be read leaves its alerts untouched (no false resolution).
    """
    runner = runner or default_runner()
    interval_start = interval_start or now
    all_rules = rules is None
    rules = list_rules(conn, enabled_only=True) if rules is None else [r for r in rules if r.enabled]
    conn.commit()
    report = EvaluationReport()
    # progress is refreshed even without target rules: the boards read target_progress
    progresses = _target_progress(conn, now) if refresh_targets else None
    channels = [c.name for c in list_channels(conn, enabled_only=True)]
    conn.commit()
    for rule in rules:
        try:
            findings = findings_for(conn, rule, now, progresses)
        except ConditionUnavailable as exc:
            conn.rollback()
            report.skipped += 1
            report.errors[rule.id] = str(exc)
            _record_evaluation(conn, rule.id, interval_start, now, runner, 0, str(exc))
            conn.commit()
            continue
        except Exception as exc:
            conn.rollback()
            log.exception("alert rule evaluation failed", extra={"event": "alerts.rule_error", "rule": rule.id})
            report.errors[rule.id] = f"{type(exc).__name__}: {exc}"
            _record_evaluation(conn, rule.id, interval_start, now, runner, 0, report.errors[rule.id])
            conn.commit()
            continue
        with conn.transaction():
            fired, resolved, queued = _apply(conn, rule, findings, now, channels)
            _record_evaluation(conn, rule.id, interval_start, now, runner, len(findings), None)
        conn.commit()
        report.rules += 1
        report.fired += fired
        report.resolved += resolved
        report.notifications += queued
    if all_rules:
        _retire_orphans(conn, {r.id for r in rules}, now)
        conn.commit()
    log.info(
        "alert rules evaluated",
        extra={
            "event": "alerts.evaluated",
            "rules": report.rules,
            "fired": report.fired,
            "resolved": report.resolved,
            "notifications": report.notifications,
            "skipped": report.skipped,
        },
    )
    return report


def _target_progress(conn: psycopg.Connection, now: datetime) -> list[Any] | None:
    try:
        import metrics

        progresses = metrics.evaluate_targets(conn, as_of=now)
        metrics.store_progress(conn, progresses)
        conn.commit()
        return list(progresses)
    except Exception as exc:
        conn.rollback()
        log.warning(
            "target progress unavailable; target rules skipped",
            extra={"event": "alerts.progress_unavailable", "error": f"{type(exc).__name__}: {exc}"},
        )
        return None


def _record_evaluation(
    conn: psycopg.Connection,
    rule_id: str,
    interval_start: datetime,
    now: datetime,
    runner: str,
    n: int,
    error: str | None,
) -> None:
    conn.execute(
        "INSERT INTO alert_evaluation (rule_id, interval_start, evaluated_at, runner, findings, error)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (rule_id, interval_start, now, runner, n, error),
    )


def _load_active(conn: psycopg.Connection, rule_id: str) -> dict[str, AlertState]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, scope_key, scope, state, severity, value, summary, started_at, last_seen_at, fired_at,"
            " resolved_at, clear_since, last_notified_at, acknowledged_at"
            " FROM alert WHERE rule_id = %s AND state IN ('pending', 'firing') FOR UPDATE",
            (rule_id,),
        ).fetchall()
    return {r["scope_key"]: AlertState(**r) for r in rows}


def _apply(
    conn: psycopg.Connection, rule: Rule, findings: list[Finding], now: datetime, channels: list[str]
) -> tuple[int, int, int]:
    active = _load_active(conn, rule.id)
    by_scope = {f.scope_key: f for f in findings}
    groups: dict[NotifyEvent, list[AlertState]] = defaultdict(list)
    fired = resolved = 0
    for key in sorted(set(active) | set(by_scope)):
        step = advance(
            active.get(key),
            by_scope.get(key),
            now,
            for_s=rule.for_s,
            resolve_after_s=rule.resolve_after_s,
            repeat_s=rule.repeat_s,
        )
        if step.alert is None:
            continue
        alert = _save(conn, rule, step.alert, step.events, now)
        if step.notify:
            groups[step.notify].append(alert)
        fired += step.notify == "firing"
        resolved += step.notify == "resolved"
    targets = channels if rule.channels is None else [c for c in rule.channels if c in channels]
    queued = 0
    for event in ("firing", "resolved", "reminder"):
        members = groups.get(event)
        if not members or not targets:
            continue
        message = build_message(rule, event, members, now)
        for channel in targets:
            conn.execute(
                "INSERT INTO notification (channel, event, rule_id, alert_ids, message, created_at, next_attempt_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (channel, event, rule.id, [a.id for a in members], Jsonb(message), now, now),
            )
            queued += 1
    return fired, resolved, queued


def _save(conn: psycopg.Connection, rule: Rule, a: AlertState, events: list[str], now: datetime) -> AlertState:
    if a.id is None:
        row = conn.execute(
            "INSERT INTO alert (rule_id, kind, scope_key, scope, state, severity, value, summary, started_at,"
            " fired_at, resolved_at, last_seen_at, clear_since, last_notified_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                rule.id,
                rule.kind,
                a.scope_key,
                Jsonb(a.scope),
                a.state,
                a.severity,
                a.value,
                a.summary,
                a.started_at,
                a.fired_at,
                a.resolved_at,
                a.last_seen_at,
                a.clear_since,
                a.last_notified_at,
            ),
        ).fetchone()
        assert row is not None
        a = AlertState(**{**_fields(a), "id": row[0]})
    else:
        conn.execute(
            "UPDATE alert SET scope = %s, state = %s, severity = %s, value = %s, summary = %s, fired_at = %s,"
            " resolved_at = %s, last_seen_at = %s, clear_since = %s, last_notified_at = %s, updated_at = now()"
            " WHERE id = %s",
            (
                Jsonb(a.scope),
                a.state,
                a.severity,
                a.value,
                a.summary,
                a.fired_at,
                a.resolved_at,
                a.last_seen_at,
                a.clear_since,
                a.last_notified_at,
                a.id,
            ),
        )
    for event in events:
        note = a.summary if event in ("pending", "firing", "severity", "reminder") else ""
        conn.execute(
            "INSERT INTO alert_event (alert_id, at, event, state, value, note) VALUES (%s, %s, %s, %s, %s, %s)",
            (a.id, now, event, a.state, a.value, note),
        )
    return a


def _fields(a: AlertState) -> dict[str, Any]:
    return {name: getattr(a, name) for name in a.__dataclass_fields__}


def _retire_orphans(conn: psycopg.Connection, enabled: set[str], now: datetime) -> None:
    """Active alerts of rules that were disabled or deleted resolve quietly (no notification)."""
    rows = conn.execute(
        "UPDATE alert SET state = 'resolved', resolved_at = %s, updated_at = now()"
        " WHERE state IN ('pending', 'firing') AND NOT (rule_id = ANY(%s)) RETURNING id",
        (now, list(enabled)),
    ).fetchall()
    for (alert_id,) in rows:
        conn.execute(
            "INSERT INTO alert_event (alert_id, at, event, state, note)"
            " VALUES (%s, %s, 'resolved', 'resolved', 'rule disabled or deleted')",
            (alert_id, now),
        )


def build_message(rule: Rule, event: str, alerts: list[AlertState], now: datetime) -> dict[str, Any]:
    """The channel-neutral message of one group; notifiers render it as JSON, markdown or e-mail."""
    severity = max((a.severity for a in alerts), key=severity_rank)
    return {
        "event": event,
        "rule": {"id": rule.id, "title": rule.display_title(), "kind": rule.kind},
        "severity": severity,
        "at": now.isoformat(),
        "count": len(alerts),
        "alerts": [
            {
                "id": a.id,
                "scope": a.scope,
                "severity": a.severity,
                "value": a.value,
                "summary": a.summary,
                "started_at": a.started_at.isoformat(),
                "fired_at": a.fired_at.isoformat() if a.fired_at else None,
                "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
            }
            for a in alerts
        ],
    }
