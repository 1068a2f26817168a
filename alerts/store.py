"""Alert persistence: rules (file + API), alerts and their history, channels and notification deliveries.

Every function runs in its caller's transaction; on an idle connection it commits what it did itself
(`owns_transaction`), so a caller's connection is never committed nor left idle in a transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from alerts.rules import DEFAULT_RULES_FILE, Rule, read_rules_file
from storage.transactions import owns_transaction


class Alert(BaseModel):
    """An alert as the API and CLI show it."""

    id: int
    rule_id: str
    kind: str
    scope: dict[str, Any]
    state: Literal["pending", "firing", "resolved"]
    severity: str
    summary: str
    value: float | None
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    #: the notification group within its rule (`operator=cmcc`), and whether it is never notified
    group_key: str = ""
    quiet: bool = False


class AlertGroup(BaseModel):
    """The alerts of one rule and notification group in a listing: how many in each state."""

    rule_id: str
    group_key: str
    labels: dict[str, Any]
    severity: str
    firing: int
    pending: int
    resolved: int
    latest: datetime


_ALERT_COLUMNS = (
    "id, rule_id, kind, scope, state, severity, summary, value, started_at, fired_at, resolved_at, "
    "acknowledged_at, acknowledged_by, group_key, quiet"
)
STATES = ("firing", "pending", "resolved", "all")


# --- alerts ---------------------------------------------------------------------------------------------


def _alert_filter(state: str, operator: str | None, rule: str | None) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if state == "firing":
        where.append("state = 'firing'")
    elif state == "pending":
        where.append("state = 'pending'")
    elif state == "resolved":
        where.append("state = 'resolved' AND fired_at IS NOT NULL")
    elif state == "all":
        where.append("(fired_at IS NOT NULL OR state = 'pending')")
    else:
        raise ValueError(f"unknown alert state {state!r}: use firing, pending, resolved or all")
    if operator is not None:
        where.append("scope->>'operator' = %s")
        params.append(operator)
    if rule is not None:
        where.append("rule_id = %s")
        params.append(rule)
    return " AND ".join(where), params


@owns_transaction
def list_alerts(
    conn: psycopg.Connection,
    state: str = "firing",
    operator: str | None = None,
    *,
    rule: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[Alert]:
    """Alerts by state: `firing`, `pending`, `resolved` (ones that fired) or `all`; optionally one operator's
    or one rule's; newest first, a page of `limit` from `offset`."""
    where, params = _alert_filter(state, operator, rule)
    sql = (
        f"SELECT {_ALERT_COLUMNS} FROM alert WHERE {where} "
        "ORDER BY coalesce(resolved_at, fired_at, started_at) DESC, id DESC LIMIT %s OFFSET %s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return [Alert.model_validate(r) for r in cur.execute(sql, [*params, limit, offset])]


@owns_transaction
def count_alerts(
    conn: psycopg.Connection, state: str = "firing", operator: str | None = None, *, rule: str | None = None
) -> int:
    where, params = _alert_filter(state, operator, rule)
    row = conn.execute(f"SELECT count(*) FROM alert WHERE {where}", params).fetchone()
    return int(row[0]) if row else 0


@owns_transaction
def alert_groups(
    conn: psycopg.Connection, state: str = "firing", operator: str | None = None, *, rule: str | None = None
) -> list[AlertGroup]:
    """The alerts of the listing folded by rule and notification group, those with firing alerts first."""
    where, params = _alert_filter(state, operator, rule)
    sql = (
        "SELECT rule_id, group_key, (array_agg(scope ORDER BY id DESC))[1] AS scope,"
        " max(CASE severity WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END) AS rank,"
        " count(*) FILTER (WHERE state = 'firing') AS firing, count(*) FILTER (WHERE state = 'pending') AS pending,"
        " count(*) FILTER (WHERE state = 'resolved') AS resolved,"
        " max(coalesce(resolved_at, fired_at, started_at)) AS latest"
        f" FROM alert WHERE {where} GROUP BY rule_id, group_key"
        " ORDER BY count(*) FILTER (WHERE state = 'firing') > 0 DESC, 4 DESC, latest DESC, rule_id, group_key"
    )
    out = []
    for rule_id, key, scope, rank, firing, pending, resolved, latest in conn.execute(sql, params):
        labels = dict(part.split("=", 1) for part in key.split(",")) if key else {}
        labels = {k: scope.get(k, v) for k, v in labels.items()}
        severity = ("info", "warning", "critical")[rank]
        out.append(
            AlertGroup(
                rule_id=rule_id,
                group_key=key,
                labels=labels,
                severity=severity,
                firing=firing,
                pending=pending,
                resolved=resolved,
                latest=latest,
            )
        )
    return out


@owns_transaction
def get_alert(conn: psycopg.Connection, alert_id: int) -> Alert | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_ALERT_COLUMNS} FROM alert WHERE id = %s", (alert_id,)).fetchone()
    return Alert.model_validate(row) if row else None


@owns_transaction
def acknowledge(conn: psycopg.Connection, alert_id: int, by: str) -> Alert | None:
    """Mark an alert acknowledged (stops reminders; resolution is still notified). None if no such alert.

    Acknowledging twice keeps the first acknowledgement.
    """
    row = conn.execute(
        "UPDATE alert SET acknowledged_at = now(), acknowledged_by = %s, updated_at = now()"
        " WHERE id = %s AND acknowledged_at IS NULL RETURNING state",
        (by, alert_id),
    ).fetchone()
    if row is not None:
        conn.execute(
            "INSERT INTO alert_event (alert_id, at, event, state, note) VALUES (%s, now(), 'acknowledged', %s, %s)",
            (alert_id, row[0], f"by {by}"),
        )
    return get_alert(conn, alert_id)


@owns_transaction
def alert_history(conn: psycopg.Connection, alert_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return list(
            cur.execute(
                "SELECT at, event, state, value, note FROM alert_event WHERE alert_id = %s ORDER BY at, id",
                (alert_id,),
            )
        )


# --- rules ----------------------------------------------------------------------------------------------


def _rule_from_row(spec: dict[str, Any], enabled: bool) -> Rule:
    return Rule.model_validate({**spec, "enabled": enabled})


@owns_transaction
def list_rules(conn: psycopg.Connection, *, enabled_only: bool = False) -> list[Rule]:
    sql = "SELECT spec, enabled FROM alert_rule WHERE NOT deleted"
    if enabled_only:
        sql += " AND enabled"
    return [_rule_from_row(spec, enabled) for spec, enabled in conn.execute(sql + " ORDER BY id")]


@owns_transaction
def get_rule(conn: psycopg.Connection, rule_id: str) -> Rule | None:
    row = conn.execute("SELECT spec, enabled FROM alert_rule WHERE id = %s AND NOT deleted", (rule_id,)).fetchone()
    return _rule_from_row(row[0], row[1]) if row else None


@owns_transaction
def upsert_rule(conn: psycopg.Connection, rule: Rule) -> bool:
    """Add or change a rule (an admin's change: reloading the rules file never overwrites it). True if created."""
    row = conn.execute(
        "INSERT INTO alert_rule (id, kind, spec, enabled, source, deleted, updated_at)"
        " VALUES (%s, %s, %s, %s, 'api', false, now())"
        " ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, spec = EXCLUDED.spec, enabled = EXCLUDED.enabled,"
        " source = 'api', deleted = false, updated_at = now()"
        " RETURNING (xmax = 0), (SELECT deleted FROM alert_rule r WHERE r.id = %s)",
        (rule.id, rule.kind, Jsonb(rule.model_dump(mode="json")), rule.enabled, rule.id),
    ).fetchone()
    assert row is not None
    return bool(row[0] or row[1])


@owns_transaction
def delete_rule(conn: psycopg.Connection, rule_id: str) -> bool:
    """Delete a rule (kept as a tombstone so the rules file does not bring it back). False if unknown."""
    row = conn.execute(
        "UPDATE alert_rule SET deleted = true, enabled = false, source = 'api', updated_at = now()"
        " WHERE id = %s AND NOT deleted RETURNING id",
        (rule_id,),
    ).fetchone()
    return row is not None


@owns_transaction
def sync_rules_file(conn: psycopg.Connection, path: Path = DEFAULT_RULES_FILE) -> int:
    """Load the rules file: new rules are added, file-sourced ones updated, admin-changed ones left alone.

    Rules that came from the file and are no longer in it are disabled. Returns the number of rules written.
    """
    rules = read_rules_file(path)
    written = 0
    for rule in rules:
        cur = conn.execute(
            "INSERT INTO alert_rule (id, kind, spec, enabled, source) VALUES (%s, %s, %s, %s, 'file')"
            " ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, spec = EXCLUDED.spec, enabled = EXCLUDED.enabled,"
            " updated_at = now() WHERE alert_rule.source = 'file' AND NOT alert_rule.deleted"
            " AND alert_rule.spec IS DISTINCT FROM EXCLUDED.spec",
            (rule.id, rule.kind, Jsonb(rule.model_dump(mode="json")), rule.enabled),
        )
        written += cur.rowcount
    conn.execute(
        "UPDATE alert_rule SET enabled = false, updated_at = now()"
        " WHERE source = 'file' AND enabled AND NOT (id = ANY(%s))",
        ([r.id for r in rules],),
    )
    return written


# --- channels -------------------------------------------------------------------------------------------


class Channel(BaseModel):
    """A notification channel: kind webhook | dingtalk | wecom | email, with non-secret settings.

    Secrets are never stored: settings ending in `_env` name environment variables (url_env, secret_env,
    password_env) read when sending.
    """

    name: str
    kind: Literal["webhook", "dingtalk", "wecom", "email"]
    config: dict[str, Any] = {}
    enabled: bool = True


@owns_transaction
def upsert_channel(conn: psycopg.Connection, channel: Channel) -> None:
    conn.execute(
        "INSERT INTO notification_channel (name, kind, config, enabled) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, config = EXCLUDED.config,"
        " enabled = EXCLUDED.enabled, updated_at = now()",
        (channel.name, channel.kind, Jsonb(channel.config), channel.enabled),
    )


@owns_transaction
def list_channels(conn: psycopg.Connection, *, enabled_only: bool = False) -> list[Channel]:
    sql = "SELECT name, kind, config, enabled FROM notification_channel"
    if enabled_only:
        sql += " WHERE enabled"
    return [Channel(name=n, kind=k, config=c, enabled=e) for n, k, c, e in conn.execute(sql + " ORDER BY name")]


@owns_transaction
def load_channels_file(conn: psycopg.Connection, path: Path) -> int:
    """Load `channels: [{name, kind, enabled, ...settings}]` from YAML into the channel table."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read channels file {path}: {exc}") from exc
    items = doc.get("channels", []) if isinstance(doc, dict) else []
    n = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "name" not in item or "kind" not in item:
            raise ValueError(f"{path}: channel #{i + 1} needs `name` and `kind` (webhook, dingtalk, wecom, email)")
        item = dict(item)
        name, kind, enabled = item.pop("name"), item.pop("kind"), bool(item.pop("enabled", True))
        secrets = [k for k in item if k in ("secret", "password", "token")]
        if secrets:
            raise ValueError(
                f"{path}: channel {name!r} holds {', '.join(secrets)} in the file; put secrets in environment "
                "variables and name them with secret_env / password_env"
            )
        upsert_channel(conn, Channel(name=name, kind=kind, config=item, enabled=enabled))
        n += 1
    return n


# --- notifications --------------------------------------------------------------------------------------


@owns_transaction
def list_notifications(conn: psycopg.Connection, *, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
    """Recent deliveries with their attempts and last error (failed ones stay visible)."""
    sql = (
        "SELECT id, channel, event, rule_id, alert_ids, state, attempts, last_error, created_at,"
        " next_attempt_at, sent_at FROM notification"
    )
    params: list[Any] = []
    if state:
        sql += " WHERE state = %s"
        params.append(state)
    sql += " ORDER BY id DESC LIMIT %s"
    params.append(limit)
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(sql, params))
