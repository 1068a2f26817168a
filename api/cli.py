"""CLI commands of the API's credentials: `keys create|list|revoke` and `operators add|list` (`infrawatch
serve`, which runs the API with the scheduler, is at the top: infrawatch/cli.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
out = Console(soft_wrap=True)

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
operators_app = typer.Typer(help="Operators allowed to push data (admins register data-centre operators).")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="operator, viewer or admin.")],
    operator: Annotated[str | None, typer.Option(help="The operator an operator key writes and reads for.")] = None,
    name: Annotated[str, typer.Option(help="Who or what holds the key (shown in lists and logs).")] = "",
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    from api.keys import KeyError_, create_key
    from core.settings import get_settings
    from storage import connect

    with connect() as conn:
        try:
            key, record = create_key(conn, role=role, operator=operator, name=name, secret=get_settings().secret_key)
        except KeyError_ as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    err.print(
        f"key {record.id} created (role {record.role}"
        + (f", operator {record.operator}" if record.operator else "")
        + "); store it now — it cannot be shown again:"
    )
    out.print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves: id, prefix, role, operator, name, dates)."""
    from api.keys import list_keys
    from storage import connect

    with connect() as conn:
        records = list_keys(conn)
    table = Table("id", "prefix", "role", "operator", "name", "created", "last used", "revoked")
    for r in records:
        table.add_row(
            str(r.id),
            f"iw_{r.prefix}_…",
            r.role,
            r.operator or "",
            r.name,
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "",
            f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id from `keys list`.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from api.keys import revoke_key
    from storage import connect

    with connect() as conn:
        done = revoke_key(conn, key_id)
    if not done:
        err.print(f"[red]no active key {key_id}; `infrawatch keys list` shows the ids[/red]")
        raise typer.Exit(1)
    out.print(f"key {key_id} revoked")


@operators_app.command("add")
def operators_add(
    operator_id: Annotated[str, typer.Argument(metavar="ID", help="Operator id, e.g. gdsdc (lower-case, digits, _).")],
    name: Annotated[str, typer.Option(help="The operator's name.")],
    name_zh: Annotated[str, typer.Option(help="Its Chinese name.")] = "",
) -> None:
    """Register an operator (typically a data-centre operator) so its keys and data are accepted."""
    from api.store import register_operator
    from storage import connect

    with connect() as conn:
        try:
            register_operator(conn, operator_id, name, name_zh)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    out.print(
        f"operator {operator_id} registered; create its key with "
        f"`infrawatch keys create --role operator --operator {operator_id}`"
    )


@operators_app.command("list")
def operators_list() -> None:
    """List registered operators."""
    from api.store import list_operators
    from storage import connect

    with connect() as conn:
        rows = list_operators(conn)
    table = Table("id", "name", "name_zh", "built-in")
    for op_id, op_name, op_zh, builtin in rows:
        table.add_row(op_id, op_name, op_zh, "yes" if builtin else "")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(operators_app, name="operators", no_args_is_help=True)
