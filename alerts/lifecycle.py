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
    """A rule's condition holding for one scope in one evaluation."""

    scope_key: str
    scope: dict[str, Any]
    value: float | None
    summary: str
    severity: str


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
) -> Step:
    """Move one rule+scope one evaluation forward. `finding` None means the condition does not hold now."""
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
        )
        if for_s <= 0:
            return Step(
                replace(new, state="firing", fired_at=now, last_notified_at=now), ["pending", "firing"], "firing"
            )
        return Step(new, ["pending"])

    if finding is not None:
        seen = replace(
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
                    replace(seen, state="firing", fired_at=now, last_notified_at=now), [*events, "firing"], "firing"
                )
            return Step(seen, events)
        # firing: a reminder when due and nobody acknowledged it
        last = current.last_notified_at or current.fired_at or now
        if repeat_s > 0 and current.acknowledged_at is None and (now - last).total_seconds() >= repeat_s:
            return Step(replace(seen, last_notified_at=now), [*events, "reminder"], "reminder")
        return Step(seen, events)

    # the condition does not hold
    if current.state == "pending":
        return Step(replace(current, state="resolved", resolved_at=now, clear_since=now), ["cleared"])
    clear_since = current.clear_since or now
    if (now - clear_since).total_seconds() >= resolve_after_s:
        return Step(
            replace(current, state="resolved", resolved_at=now, clear_since=clear_since, last_notified_at=now),
            ["resolved"],
            "resolved",
        )
    if current.clear_since is None:
        return Step(replace(current, clear_since=now), ["clearing"])
    return Step(current)
