"""The `infrawatch` command line: one typer app; each part of the data flow adds its own commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from core.logs import setup_logging
from core.settings import get_settings
from storage.checked import checked_connection

_PLAIN_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH", "bool": ""}


def _plain_type(label: str | None) -> str | None:
    """`<int>` → `INTEGER`, `<list[Path]>` → `PATH`, `<bool>` → nothing: types named as click names them."""
    if not label or not (label.startswith("<") and label.endswith(">")):
        return label
    inner = label[1:-1].removeprefix("list[").removesuffix("]")
    plain = _PLAIN_TYPES.get(inner, inner.upper() if inner.isidentifier() else f"[{inner}]")
    return plain or None


def _render_types_plainly() -> None:
    """typer 0.2x prints `<bool>` after every flag and `<str>` after every option in --help; print nothing
    after a flag and TEXT / INTEGER / PATH after the others, as click-based tools do."""
    from typer import core

    for cls in (getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)):
        original = getattr(cls, "display_type_rich", None)
        if cls is None or original is None or getattr(original, "_plain", False):
            continue

        def display(self: object, ctx: object, _original: object = original) -> str | None:
            if getattr(self, "is_flag", False) or getattr(self, "count", False):
                return None
            return _plain_type(_original(self, ctx))  # type: ignore[operator]

        display._plain = True  # type: ignore[attr-defined]
        cls.display_type_rich = display


_render_types_plainly()

app = typer.Typer(
    help="infrawatch: plan-target monitoring for digital infrastructure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(stderr=True)
out = Console(soft_wrap=True)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug lines.")] = False,
) -> None:
    settings = get_settings()
    setup_logging("DEBUG" if verbose else settings.log_level, json_lines=settings.log_json)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations, then republish the targets' expected trajectories (they are cut in
    the plans' time zone, which the upgrade records)."""
    from metrics import publish_trajectories
    from storage import connect, database_url, upgrade

    url = database_url()
    applied = upgrade(url)
    if applied:
        for m in applied:
            out.print(f"applied {m.version:04d}_{m.name}")
    else:
        out.print("schema is up to date")
    with connect(url) as conn:
        publish_trajectories(conn)


@db_app.command("maintain")
def db_maintain(
    months_ahead: Annotated[int, typer.Option(help="Create partitions this many months ahead.")] = 3,
    retention_days: Annotated[int, typer.Option(help="Drop partitions older than this; 0 keeps everything.")] = 0,
) -> None:
    """Create partitions ahead and apply retention (plain PostgreSQL)."""
    from storage import connect
    from storage.maintenance import create_partitions_ahead, drop_old_partitions

    with connect() as conn:
        made = create_partitions_ahead(conn, months_ahead)
        dropped = drop_old_partitions(conn, retention_days) if retention_days else 0
    out.print(f"partitions created: {made}, dropped: {dropped}")


@app.command("load-csv")
def load_csv_command(
    paths: Annotated[list[Path], typer.Argument(help="CSV files (long or wide format).", exists=False)],
    operator: Annotated[str | None, typer.Option(help="Operator for rows without an operator column.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Time zone for naive timestamps and dates (default INFRAWATCH_TIMEZONE).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
) -> None:
    """Load CSV files; exit 0 when every row was stored, 1 when some were rejected, 2 on unusable input."""
    from collectors.csvfile import UnusableInput, load_csv
    from ingest.pipeline import IngestPipeline

    worst = 0
    pipeline = IngestPipeline()
    reports = []
    with checked_connection() as conn:
        for path in paths:
            try:
                size = path.stat().st_size
            except OSError as exc:
                console.print(f"[red]{path}: cannot read ({exc.strerror})[/red]")
                worst = 2
                continue
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as progress:
                task = progress.add_task(path.name, total=size)

                def advance(n: int, progress: Progress = progress, task: TaskID = task) -> None:
                    progress.advance(task, n)

                try:
                    report = load_csv(
                        conn,
                        path,
                        operator=operator,
                        operator_column_trusted=True,
                        timezone=timezone,
                        pipeline=pipeline,
                        on_progress=advance,
                    )
                except UnusableInput as exc:
                    console.print(f"[red]{path}: {exc}[/red]")
                    worst = 2
                    continue
            reports.append(report.as_dict())
            if report.rejected:
                worst = max(worst, 1)
            if not as_json:
                _print_upload_report(report)
    if as_json:
        out.print_json(json.dumps(reports, ensure_ascii=False))
    raise typer.Exit(worst)


def _print_upload_report(report: object) -> None:
    from collectors.csvfile import UploadReport

    assert isinstance(report, UploadReport)
    status = "[green]all rows stored[/green]" if not report.rejected else f"[yellow]{report.rejected} rejected[/yellow]"
    out.print(
        f"[bold]{report.filename}[/bold] ({report.format}, {report.encoding}): {report.rows} rows, "
        f"{report.accepted} accepted, {report.duplicates} duplicates, {report.revised} revised — {status}"
    )
    if report.same_as:
        out.print(f"  identical to upload {report.same_as}" + (" — nothing changed" if report.unchanged else ""))
    if report.ignored_columns:
        out.print(f"  ignored columns (not metric ids): {', '.join(report.ignored_columns)}")
    if report.errors:
        table = Table("line", "column", "error", show_edge=False)
        for e in report.errors[:50]:
            table.add_row(str(e["line"] or ""), e["column"], e["error"])
        out.print(table)
        more = len(report.errors) - 50 + report.errors_not_listed
        if more > 0:
            out.print(f"  … and {more} more (all are kept in quarantine)")


@app.command("watch-inbox")
def watch_inbox_command(
    inbox: Annotated[Path, typer.Argument(help="Folder to watch; files move to done/ or failed/.")],
    operator: Annotated[
        str, typer.Option(help="The operator whose folder this is; a row naming another operator is rejected.")
    ],
    timezone: Annotated[
        str | None, typer.Option(help="Time zone for naive timestamps (default INFRAWATCH_TIMEZONE).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between scans.")] = 2.0,
    quiet: Annotated[
        float, typer.Option(help="Seconds a file must stay unchanged before it is taken (or write NAME.part, rename).")
    ] = 2.0,
    once: Annotated[bool, typer.Option(help="Process what is there (waiting for files to settle) and exit.")] = False,
) -> None:
    """Load CSV files dropped into a folder, moving each to done/ or failed/ with its report beside it."""
    from collectors.inbox import watch_inbox

    checked_connection().close()
    watch_inbox(inbox, operator=operator, timezone=timezone, interval=interval, once=once, quiet_s=quiet)


#: Which module adds each top-level command; only the one a command needs is imported, so a quick
#: command (load-csv) does not pay for the web stack's imports. `--help` imports them all.
COMMAND_MODULES: dict[str, str] = {
    "targets": "metrics.cli",
    "status": "metrics.cli",
    "rollups": "metrics.cli",
    "regions": "metrics.cli",
    "reconciliation": "metrics.cli",
    "ingest": "collectors.mqtt.cli",
    "mqtt": "collectors.mqtt.cli",
    "keys": "api.cli",
    "operators": "api.cli",
    "alerts": "alerts.cli",
    "simulate": "simulators.cli",
    "dashboards": "dashboards.cli",
    "demo": "infrawatch.demo",
    "bulletin": "bulletins.cli",
}
_BUILTIN = {"db", "load-csv", "watch-inbox", "serve", "scheduler"}


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Do not run the scheduler's jobs in this process.")
    ] = False,
) -> None:
    """Run the HTTP API and web console (uvicorn), with the scheduler unless --no-scheduler."""
    import uvicorn

    from api.app import create_app
    from infrawatch.scheduler import start_background
    from storage import SchemaBehind

    try:
        app_ = create_app(background=None if no_scheduler else start_background)
        uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=10)
    except SchemaBehind as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command("scheduler")
def scheduler_command(
    rules_file: Annotated[
        Path | None, typer.Option(help="Rules YAML to load at start (default alerts/rules.yaml).")
    ] = None,
    channels_file: Annotated[Path | None, typer.Option(help="Channels YAML to load at start.")] = None,
    evaluate_every: Annotated[
        float | None, typer.Option(help="Seconds between alert evaluations (default 60).")
    ] = None,
) -> None:
    """Run the scheduler (alert evaluation, notifications, rollups, partitions, bulletins) until SIGTERM."""
    from infrawatch.scheduler import run_foreground
    from storage import database_url

    checked_connection().close()
    updates: dict[str, object] = {}
    if rules_file:
        updates["alerts_rules_file"] = rules_file
    if channels_file:
        updates["alerts_channels_file"] = channels_file
    if evaluate_every:
        updates["alerts_evaluate_interval_s"] = evaluate_every
    run_foreground(database_url(), get_settings().model_copy(update=updates))


def _requested_command(argv: list[str]) -> str | None:
    for arg in argv[1:]:
        if not arg.startswith("-"):
            return arg
    return None


def _register_subcommands(argv: list[str] | None = None) -> None:
    """Each package adds its commands here; a missing or broken optional part never breaks the CLI."""
    import importlib

    command = _requested_command(sys.argv if argv is None else argv)
    if command in _BUILTIN:
        return
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else list(dict.fromkeys(COMMAND_MODULES.values()))
    for module in wanted:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that part is not installed
            console.print(f"[yellow]infrawatch: the {module} commands are unavailable: {exc}[/yellow]")
            continue
        except Exception as exc:  # a broken part must not take the other commands down
            console.print(f"[yellow]infrawatch: the {module} commands are unavailable: {exc!r}[/yellow]")
            continue
        register = getattr(mod, "register", None)
        if register:
            register(app)


_register_subcommands()


def main() -> None:  # pragma: no cover
    sys.exit(app())
