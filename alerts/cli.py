"""Command line for alerting: `infrawatch alerts list|ack|rules|channels|notifications`."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True)

alerts_app = typer.Typer(help="Alerts, alert rules and notification channels.", no_args_is_help=True)


@alerts_app.command("list")
def list_command(
    state: Annotated[str, typer.Option(help="firing, pending, resolved or all.")] = "firing",
    operator: Annotated[str | None, typer.Option(help="Only alerts about this operator.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List alerts."""
    from alerts.store import list_alerts
    from storage import connect

    with connect() as conn:
        try:
            alerts = list_alerts(conn, state, operator)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps([a.model_dump(mode="json") for a in alerts], ensure_ascii=False))
        return
    if not alerts:
        out.print(f"no {state} alerts")
        return
    table = Table("id", "state", "severity", "rule", "since", "ack", "summary", show_edge=False)
    for a in alerts:
        since = a.resolved_at or a.fired_at or a.started_at
        table.add_row(
            str(a.id), a.state, a.severity, a.rule_id, f"{since:%Y-%m-%d %H:%M}", a.acknowledged_by or "", a.summary
        )
    out.print(table)


@alerts_app.command("ack")
def ack_command(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `infrawatch alerts list`).")],
    by: Annotated[str | None, typer.Option(help="Who acknowledges (default: the login name).")] = None,
) -> None:
    """Acknowledge an alert (stops its reminders)."""
    from alerts.store import acknowledge
    from storage import connect

    with connect() as conn:
        alert = acknowledge(conn, alert_id, by or getpass.getuser())
    if alert is None:
        err.print(f"[red]no alert {alert_id}; see `infrawatch alerts list --state all`[/red]")
        raise typer.Exit(1)
    out.print(f"alert {alert.id} acknowledged by {alert.acknowledged_by} at {alert.acknowledged_at:%Y-%m-%d %H:%M}")


@alerts_app.command("rules")
def rules_command(
    load: Annotated[Path | None, typer.Option(help="Load this rules YAML first (as the scheduler does).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the alert rules in the database."""
    from alerts.rules import RulesFileError
    from alerts.store import list_rules, sync_rules_file
    from storage import connect

    with connect() as conn:
        if load:
            try:
                n = sync_rules_file(conn, load)
            except RulesFileError as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
            err.print(f"{n} rules written from {load}")
        rules = list_rules(conn)
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rules], ensure_ascii=False))
        return
    table = Table("id", "kind", "on", "severity", "for", "resolve after", "title", show_edge=False)
    for r in rules:
        table.add_row(
            r.id, r.kind, "yes" if r.enabled else "no", r.severity, f"{r.for_s}s", f"{r.resolve_after_s}s", r.title
        )
    out.print(table)


@alerts_app.command("channels")
def channels_command(
    load: Annotated[Path | None, typer.Option(help="Load this channels YAML first.")] = None,
) -> None:
    """List notification channels (secrets are read from the environment, never shown)."""
    from alerts.store import list_channels, load_channels_file
    from storage import connect

    with connect() as conn:
        if load:
            try:
                load_channels_file(conn, load)
            except ValueError as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
        channels = list_channels(conn)
    table = Table("name", "kind", "on", "settings", show_edge=False)
    for c in channels:
        table.add_row(c.name, c.kind, "yes" if c.enabled else "no", json.dumps(c.config, ensure_ascii=False))
    out.print(table)


@alerts_app.command("notifications")
def notifications_command(
    state: Annotated[str | None, typer.Option(help="pending, sent or failed.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
) -> None:
    """Recent notification deliveries with attempts and last error."""
    from alerts.store import list_notifications
    from storage import connect

    with connect() as conn:
        rows = list_notifications(conn, limit=limit, state=state)
    table = Table("id", "channel", "event", "rule", "alerts", "state", "attempts", "last error", show_edge=False)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["channel"],
            r["event"],
            r["rule_id"],
            str(len(r["alert_ids"])),
            r["state"],
            str(r["attempts"]),
            (r["last_error"] or "")[:80],
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
