"""A command line's database connection: one whose schema is current, or a clear message and exit 2."""

from __future__ import annotations

import psycopg
import typer
from rich.console import Console

from storage.db import connect
from storage.migrate import SchemaBehind, check_schema

_err = Console(stderr=True)


def checked_connection() -> psycopg.Connection:
    """A connection to a database whose schema is current; otherwise say what to run and exit 2."""
    try:
        conn = connect()
        check_schema(conn)
        conn.commit()
    except SchemaBehind as exc:
        _err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except psycopg.OperationalError as exc:
        _err.print(f"[red]cannot reach the database ({exc}); check INFRAWATCH_DATABASE_URL[/red]")
        raise typer.Exit(2) from None
    return conn
