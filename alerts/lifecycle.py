"""The alert life cycle as a pure function: pending → firing → resolved, with `for`, resolve delay and reminders.

No I/O here: the engine loads the active alert of a rule and scope, calls `advance` with what the rule found
in this evaluation, and writes back the result and the notification it asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

NotifyEvent = Literal["firing", "resolved", "reminder"]


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule saw for one scope in one evaluation: the condition holding (`holds`), or not holding —
    then its value and summary are what a resolution notice reports."""

    scope_key: str
    scope: dict[str, Any]
    value: float | None
    summary: str
    severity: str
    holds: bool = True
    #: record the alert but never notify it (a target already missed when its rule first evaluated)
    quiet: bool = False


@dataclass(frozen=True, slots=True)
class AlertState:
    """The fields of an alert the life cycle reads and changes (id None: not stored yet)."""

    scope_key: str
    scope: dict[str, Any]
    state: Literal["pending", "firing", "resolved"]
    severity: str
    value: float | None
    summary: str
    started_at: datetime
    last_seen_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    clear_since: datetime | None = None
    last_notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    id: int | None = None
    quiet: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one evaluation for one scope: the new state, history events and what to notify."""

    alert: AlertState | None
    events: list[str] = field(default_factory=list)
    notify: NotifyEvent | None = None


def scope_key(scope: dict[str, Any]) -> str:
    """A stable text key for a scope dict: `k=v` pairs sorted by key (empty scope → "")."""
    return ",".join(f"{k}={scope[k]}" for k in sorted(scope) if scope[k] is not None)


def advance(
    current: AlertState | None,
    finding: Finding | None,
    now: datetime,
    *,
    for_s: int,
    resolve_after_s: int,
    repeat_s: int,
    seen: Finding | None = None,
) -> Step:
    """Move one rule+scope one evaluation forward. `finding` None means the condition does not hold now;
    `seen` is then what the rule saw instead (its value and summary go into a resolution), None when the
    scope was not judged at all (the resolution then carries no value rather than the firing one)."""
    if finding is not None and not finding.holds:
        finding, seen = None, finding
    step = _advance(current, finding, now, for_s=for_s, resolve_after_s=resolve_after_s, repeat_s=repeat_s, seen=seen)
    if step.alert is not None and step.alert.quiet and step.notify is not None:
        return replace(step, notify=None)
    return step


def _advance(
    current: AlertState | None,
    finding: Finding | None,
    now: datetime,
    *,
    for_s: int,
    resolve_after_s: int,
    repeat_s: int,
    seen: Finding | None,
) -> Step:
    if current is None or current.state == "resolved":
        if finding is None:
            return Step(None)
        new = AlertState(
            scope_key=finding.scope_key,
            scope=finding.scope,
            state="pending",
            severity=finding.severity,
            value=finding.value,
            summary=finding.summary,
            started_at=now,
            last_seen_at=now,
            quiet=finding.quiet,
        )
        if for_s <= 0:
            return Step(
                replace(new, state="firing", fired_at=now, last_notified_at=now), ["pending", "firing"], "firing"
            )
        return Step(new, ["pending"])

    if finding is not None:
        updated = replace(
            current,
            value=finding.value,
            summary=finding.summary,
            severity=finding.severity,
            scope=finding.scope,
            last_seen_at=now,
            clear_since=None,
        )
        events = ["severity"] if finding.severity != current.severity else []
        if current.state == "pending":
            if (now - current.started_at).total_seconds() >= for_s:
                return Step(
                    replace(updated, state="firing", fired_at=now, last_notified_at=now), [*events, "firing"], "firing"
                )
            return Step(updated, events)
        # firing: a reminder when due and nobody acknowledged it
        last = current.last_notified_at or current.fired_at or now
        if repeat_s > 0 and current.acknowledged_at is None and (now - last).total_seconds() >= repeat_s:
            return Step(replace(updated, last_notified_at=now), [*events, "reminder"], "reminder")
        return Step(updated, events)

    # the condition does not hold
    if current.state == "pending":
        return Step(replace(current, state="resolved", resolved_at=now, clear_since=now), ["cleared"])
    clear_since = current.clear_since or now
    if (now - clear_since).total_seconds() >= resolve_after_s:
        resolved = replace(
            current,
            state="resolved",
            resolved_at=now,
            clear_since=clear_since,
            last_notified_at=now,
            value=seen.value if seen is not None else None,
            summary=seen.summary if seen is not None else current.summary,
        )
        return Step(resolved, ["resolved"], "resolved")
    if current.clear_since is None:
        return Step(replace(current, clear_since=now), ["clearing"])
    return Step(current)
