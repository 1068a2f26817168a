"""`infrawatch dashboards …`: export the provisioning files, push the boards to a Grafana, check queries."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

log = logging.getLogger(__name__)
out = Console(soft_wrap=True)
err = Console(stderr=True)

dashboards_app = typer.Typer(help="Grafana boards: export, push, check.", no_args_is_help=True)


@dashboards_app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="Provisioning directory to write (datasources/, dashboards/).")],
    timescaledb: Annotated[
        bool,
        typer.Option(
            envvar="INFRAWATCH_GRAFANA_TIMESCALEDB",
            help="The database has TimescaleDB (Grafana's $__timeGroup uses time_bucket).",
        ),
    ] = True,
    postgres_version: Annotated[
        int,
        typer.Option(envvar="INFRAWATCH_GRAFANA_POSTGRES_VERSION", help="Grafana's encoding: 1600 = PostgreSQL 16."),
    ] = 1600,
) -> None:
    """Write the datasource, the dashboard provider and the boards for Grafana file provisioning."""
    from dashboards.provisioning import DatasourceOptions, export

    written = export(directory, DatasourceOptions(timescaledb=timescaledb, postgres_version=postgres_version))
    for path in written:
        out.print(str(path))
    log.info("dashboards exported", extra={"event": "dashboards.exported", "files": len(written)})


@dashboards_app.command("push")
def push_command(
    url: Annotated[str, typer.Option(help="Grafana base URL, e.g. https://grafana.example.org")],
    token: Annotated[
        str, typer.Option(envvar="INFRAWATCH_GRAFANA_TOKEN", help="Service-account token with dashboard write rights.")
    ],
    datasource_uid: Annotated[
        str | None,
        typer.Option(help="Uid of that Grafana's PostgreSQL datasource, if not the provisioned 'infrawatch-pg'."),
    ] = None,
    folder_uid: Annotated[str, typer.Option(help="Folder to put the boards in (created if missing).")] = "infrawatch",
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request.")] = 10.0,
) -> None:
    """Create or update the boards in a Grafana that does not use file provisioning."""
    from dashboards.push import PushError, push

    try:
        pushed = push(url, token, datasource_uid=datasource_uid, folder_uid=folder_uid, timeout=timeout)
    except PushError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    for title, board_url in pushed:
        out.print(f"{title}: {board_url}")


@dashboards_app.command("check")
def check_command(
    days: Annotated[int, typer.Option(help="Time range: the last N days.")] = 365,
    allow_empty: Annotated[bool, typer.Option(help="Do not report panels without rows.")] = False,
) -> None:
    """Run every panel query against the configured database as Grafana would; exit 1 on a problem."""
    from dashboards.boards import all_boards
    from dashboards.check import check_board
    from storage import connect

    end = datetime.now(UTC)
    problems = 0
    with connect() as conn:
        for stem, board in all_boards().items():
            for result in check_board(conn, stem, board, start=end - timedelta(days=days), end=end):
                bad = result.problem and not (allow_empty and result.problem == "returned no rows")
                problems += bool(bad)
                mark = "[red]✗[/red]" if bad else "[green]✓[/green]"
                out.print(
                    f"{mark} {stem} / {result.panel} / {result.ref_id}: {result.problem or f'{result.rows} rows'}"
                )
    raise typer.Exit(1 if problems else 0)


def register(app: typer.Typer) -> None:
    app.add_typer(dashboards_app, name="dashboards")


__all__ = ["register"]
