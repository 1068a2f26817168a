"""The alert engine: evaluate every rule at `now`, move alerts through their life cycle, queue notifications.

One transaction per rule: the evaluation record, the alert changes and their history commit together, and
the alert groups they change are marked; the groups due a message are then flushed (alerts.grouping), one
message per group and channel, so a crash or restart never loses an alert nor notifies it twice. Inside a
caller's transaction each of these is a savepoint, and the caller's commit or rollback decides.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.conditions import ConditionUnavailable, findings_for
from alerts.grouping import flush_groups, group_key, mark_changed
from alerts.lifecycle import AlertState, Finding, advance
from alerts.rules import Rule
from alerts.store import list_channels, list_rules
from storage.transactions import owns_transaction

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


@owns_transaction
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

    Owns its transactions, one per step, because a rule that fails must not lose the others' results nor
    its own error record: on an idle connection (the scheduler's job) each rule commits when it is done;
    inside a caller's transaction each rule is a savepoint, rolled back alone when the rule fails, and
    nothing is committed.
    """
    runner = runner or default_runner()
    interval_start = interval_start or now
    all_rules = rules is None
    with conn.transaction():
        rules = list_rules(conn, enabled_only=True) if rules is None else [r for r in rules if r.enabled]
        channels = [c.name for c in list_channels(conn, enabled_only=True)]
    report = EvaluationReport()
    # progress is refreshed even without target rules: the boards read target_progress
    progresses = _target_progress(conn, now) if refresh_targets else None
    for rule in rules:
        try:
            with conn.transaction():
                first = _first_evaluated_at(conn, rule.id, now)
                findings = findings_for(conn, rule, now, progresses, first)
                fired, resolved = _apply(conn, rule, findings, now)
                _record_evaluation(conn, rule.id, interval_start, now, runner, sum(f.holds for f in findings), None)
                conn.execute(
                    "UPDATE alert_rule SET first_evaluated_at = %s WHERE id = %s AND first_evaluated_at IS NULL",
                    (now, rule.id),
                )
        except ConditionUnavailable as exc:
            report.skipped += 1
            report.errors[rule.id] = str(exc)
        except Exception as exc:
            log.exception("alert rule evaluation failed", extra={"event": "alerts.rule_error", "rule": rule.id})
            report.errors[rule.id] = f"{type(exc).__name__}: {exc}"
        else:
            report.rules += 1
            report.fired += fired
            report.resolved += resolved
            continue
        with conn.transaction():  # the rule's changes are rolled back; its error is kept
            _record_evaluation(conn, rule.id, interval_start, now, runner, 0, report.errors[rule.id])
    if all_rules:
        with conn.transaction():
            _retire_orphans(conn, {r.id for r in rules}, now)
    report.notifications = flush_groups(conn, now, channels, {r.id: r for r in rules})
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
    """The targets' progress at `now`, stored for the boards (None when it cannot be evaluated: the
    target rules are then skipped, and the stored snapshot is left as it was)."""
    try:
        import metrics

        with conn.transaction():
            progresses = metrics.evaluate_targets(conn, as_of=now)
            metrics.store_progress(conn, progresses)
        return list(progresses)
    except Exception as exc:
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
            " resolved_at, clear_since, last_notified_at, acknowledged_at, quiet"
            " FROM alert WHERE rule_id = %s AND state IN ('pending', 'firing') FOR UPDATE",
            (rule_id,),
        ).fetchall()
    return {r["scope_key"]: AlertState(**r) for r in rows}


def _first_evaluated_at(conn: psycopg.Connection, rule_id: str, now: datetime) -> datetime:
    """When the rule was first evaluated (now for its first evaluation, or a rule that is not stored)."""
    row = conn.execute("SELECT first_evaluated_at FROM alert_rule WHERE id = %s", (rule_id,)).fetchone()
    return row[0] if row and row[0] is not None else now


def _apply(conn: psycopg.Connection, rule: Rule, findings: list[Finding], now: datetime) -> tuple[int, int]:
    """Advance every scope of the rule; the groups of alerts that fired or resolved are marked for a message
    (reminders are the group's, not the alert's: see alerts.grouping)."""
    active = _load_active(conn, rule.id)
    holding = {f.scope_key: f for f in findings if f.holds}
    seen = {f.scope_key: f for f in findings if not f.holds}
    fired = resolved = 0
    for key in sorted(set(active) | set(holding)):
        step = advance(
            active.get(key),
            holding.get(key),
            now,
            for_s=rule.for_s,
            resolve_after_s=rule.resolve_after_s,
            repeat_s=0,
            seen=seen.get(key),
        )
        if step.alert is None:
            continue
        alert = _save(conn, rule, step.alert, step.events, now)
        if step.notify in ("firing", "resolved"):
            mark_changed(conn, rule, alert.scope, now)
        fired += step.notify == "firing"
        resolved += step.notify == "resolved"
    return fired, resolved


def _save(conn: psycopg.Connection, rule: Rule, a: AlertState, events: list[str], now: datetime) -> AlertState:
    if a.id is None:
        row = conn.execute(
            "INSERT INTO alert (rule_id, kind, scope_key, scope, state, severity, value, summary, started_at,"
            " fired_at, resolved_at, last_seen_at, clear_since, last_notified_at, group_key, quiet)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
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
                group_key(a.scope, rule.group_by),
                a.quiet,
            ),
        ).fetchone()
        assert row is not None
        a = AlertState(**{**_fields(a), "id": row[0]})
    else:
        conn.execute(
            "UPDATE alert SET scope = %s, state = %s, severity = %s, value = %s, summary = %s, fired_at = %s,"
            " resolved_at = %s, last_seen_at = %s, clear_since = %s, last_notified_at = %s, group_key = %s,"
            " updated_at = now() WHERE id = %s",
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
                group_key(a.scope, rule.group_by),
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
