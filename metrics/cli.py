"""Command line of the metrics layer: `targets load|list|show`, `status`, `rollups refresh`, `regions` and
`reconciliation`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

#: Piped output is not cut to 80 columns: tables keep whole ids (rows wrap in the other columns).
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
err = Console(stderr=True)

STATUS_STYLE = {
    "achieved": "bold green",
    "on_track": "green",
    "at_risk": "yellow",
    "off_track": "red",
    "missed": "bold red",
    "no_data": "dim",
}


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if unit in ("%",):
        return f"{v:.2f} %"
    if unit in ("ratio", "GB/kWh"):
        return f"{v:.3f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def register(app: typer.Typer) -> None:
    register_regions(app)
    targets_app = typer.Typer(
        help="Plan targets: load the default set or a YAML file, list, show.", no_args_is_help=True
    )
    rollups_app = typer.Typer(help="Indicator rollups.", no_args_is_help=True)
    app.add_typer(targets_app, name="targets")
    app.add_typer(rollups_app, name="rollups")

    @targets_app.command("load")
    def targets_load(
        path: Annotated[Path | None, typer.Argument(help="YAML file of targets; default: the shipped set.")] = None,
    ) -> None:
        """Insert or update the targets of a YAML file (default: metrics/default_targets.yaml)."""
        from metrics.targets import DEFAULT_TARGETS_FILE, load_targets
        from storage import connect

        try:
            with connect() as conn:
                n = load_targets(conn, path or DEFAULT_TARGETS_FILE)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        out.print(f"loaded {n} targets from {path or DEFAULT_TARGETS_FILE}")

    @targets_app.command("list")
    def targets_list(
        all_: Annotated[bool, typer.Option("--all", help="Include retired targets.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        file: Annotated[
            Path | None, typer.Option("--file", help="List a YAML file's targets instead (no database needed).")
        ] = None,
    ) -> None:
        """List the targets, each with its document and clause."""
        from metrics.targets import list_targets, read_targets_file
        from storage import connect

        if file is not None:
            try:
                targets = read_targets_file(file)
            except ValueError as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
        else:
            with connect() as conn:
                targets = list_targets(conn, include_retired=all_)
        if as_json:
            out.print_json(json.dumps([t.model_dump(mode="json") for t in targets], ensure_ascii=False))
            return
        table = Table(show_edge=False)
        table.add_column("id", no_wrap=True)
        table.add_column("indicator", no_wrap=True)
        table.add_column("region", no_wrap=True)
        table.add_column("goal")
        table.add_column("from → by")
        table.add_column("source", overflow="fold")
        table.add_column("active", no_wrap=True)
        for t in targets:
            goal = (
                f"{t.comparator} {_fmt(t.goal)}"
                if t.goal is not None
                else f"{t.comparator} {t.goal_indicator}"
                if t.goal_indicator
                else f"{t.comparator} baseline {t.goal_relative:+.0%}"
            )
            table.add_row(
                t.id,
                t.indicator + (f" [{t.entity}]" if t.entity else ""),
                str(t.region),
                goal,
                f"{t.start} → {t.deadline}",
                t.source,
                "yes" if t.active else "no",
            )
        out.print(table)
        if not targets:
            out.print("no targets; run `infrawatch targets load`")

    @targets_app.command("show")
    def targets_show(
        target_id: Annotated[str, typer.Argument(help="Target id, e.g. jx-2023-5g-new.")],
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="Date (end of that day, Asia/Shanghai) or date-time.")
        ] = None,
    ) -> None:
        """Show one target and its progress."""
        from metrics.progress import evaluate_target
        from metrics.targets import get_target
        from metrics.timeutil import parse_as_of
        from storage import connect

        with connect() as conn:
            t = get_target(conn, target_id)
            if t is None:
                err.print(f"[red]no target {target_id!r}; `infrawatch targets list` shows the ids[/red]")
                raise typer.Exit(1)
            p = evaluate_target(conn, t, parse_as_of(as_of) if as_of else None)
        for k, v in t.model_dump(mode="json").items():
            if v is not None:
                out.print(f"[bold]{k}[/bold]: {v}")
        out.print(
            f"[bold]progress[/bold]: [{STATUS_STYLE[p.status]}]{p.status}[/]  actual {_fmt(p.actual, p.unit)}"
            f", expected {_fmt(p.expected, p.unit)}, projected {_fmt(p.projected, p.unit)}, goal {_fmt(p.goal, p.unit)}"
        )
        for label, lags in (("lagging cities", p.laggard_cities), ("lagging operators", p.laggard_operators)):
            if lags:
                out.print(f"{label}: " + ", ".join(f"{lg.name} ({(lg.share_of_shortfall or 0):.0%})" for lg in lags))

    @app.command("status")
    def status(
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="YYYY-MM-DD (end of that day, Asia/Shanghai) or a date-time.")
        ] = None,
        target: Annotated[list[str] | None, typer.Option("--target", help="Only this target id (repeatable).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the Progress objects the API serves.")] = False,
    ) -> None:
        """Progress of every active target, coloured by status, with the lagging cities and operators."""
        from metrics.progress import evaluate_targets
        from metrics.timeutil import parse_as_of
        from storage import connect

        try:
            at = parse_as_of(as_of) if as_of else None
        except ValueError:
            err.print(
                f"[red]--as-of {as_of!r}: give a date YYYY-MM-DD or a date-time like 2023-06-30T12:00+08:00[/red]"
            )
            raise typer.Exit(2) from None
        with connect() as conn:
            try:
                progresses = evaluate_targets(conn, at, target or None)
            except KeyError as exc:
                err.print(f"[red]{exc.args[0]}[/red]")
                raise typer.Exit(1) from None
        if as_json:
            out.print_json(json.dumps([p.model_dump(mode="json") for p in progresses], ensure_ascii=False))
            return
        table = Table(show_edge=False)
        table.add_column("target", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for name in ("actual", "expected", "projected", "goal"):
            table.add_column(name, justify="right")
        table.add_column("deadline", no_wrap=True)
        table.add_column("laggards", overflow="fold")
        for p in progresses:
            lag = ", ".join(
                f"{lg.name} {(lg.share_of_shortfall or 0):.0%}"
                for lg in [*p.laggard_cities[:3], *p.laggard_operators[:2]]
            )
            table.add_row(
                p.target_id,
                f"[{STATUS_STYLE[p.status]}]{p.status}[/]",
                _fmt(p.actual, p.unit),
                _fmt(p.expected, p.unit),
                _fmt(p.projected, p.unit),
                f"{p.comparator} {_fmt(p.goal, p.unit)}",
                str(p.deadline),
                lag,
            )
        out.print(table)
        if not progresses:
            out.print("no active targets; run `infrawatch targets load`")

    @rollups_app.command("refresh")
    def rollups_refresh(
        full: Annotated[bool, typer.Option("--full", help="Recompute every day that has observations.")] = False,
    ) -> None:
        """Recompute the rollups changed since the last refresh (or all of them with --full)."""
        from metrics.rollups import mark_all_dirty, refresh_rollups
        from storage import connect
        from storage.analyze import ROLLUP_TABLES, analyze_changed

        with connect() as conn:
            if full:
                out.print(f"hours queued: {mark_all_dirty(conn)}")
            n = refresh_rollups(conn)
            analyzed = analyze_changed(conn, ROLLUP_TABLES) if n else []
        out.print(f"rollup rows written: {n}" + (f"; analysed {', '.join(analyzed)}" if analyzed else ""))


def register_regions(app: typer.Typer) -> None:
    """`regions info|list|update` and `reconciliation`."""
    regions_app = typer.Typer(
        help="The GB/T 2260 region list: which one is in force, its regions, a newer one.", no_args_is_help=True
    )
    app.add_typer(regions_app, name="regions")

    @regions_app.command("info")
    def regions_info() -> None:
        """Which list is in force: standard, year, source, and how many regions it has."""
        from reference.regions import region_list_info

        for k, v in region_list_info().items():
            out.print(f"[bold]{k}[/bold]: {v}")

    @regions_app.command("list")
    def regions_list(
        under: Annotated[int, typer.Option("--under", help="Only this region and those below it.")] = 100000,
        level: Annotated[str | None, typer.Option("--level", help="nation, province, city or county.")] = None,
    ) -> None:
        """Regions with their level and parent."""
        from reference.regions import REGIONS, subtree

        if under not in REGIONS:
            from reference.regions import unknown_region_message

            err.print(f"[red]{unknown_region_message(str(under))}[/red]")
            raise typer.Exit(2)
        table = Table("code", "name", "level", "parent", show_edge=False)
        for code in sorted(subtree(under)):
            r = REGIONS[code]
            if level is None or r.level == level:
                table.add_row(
                    str(code), r.name_zh + (f" {r.name_en}" if r.name_en else ""), r.level, str(r.parent or "")
                )
        out.print(table)

    @regions_app.command("update")
    def regions_update(
        path: Annotated[Path, typer.Argument(help="CSV with a header naming code and name_zh (or name).")],
        list_name: Annotated[str, typer.Option("--list", help="Which list it is, e.g. 2023-12.")],
        source: Annotated[str, typer.Option("--source", help="Where it was published.")] = "",
    ) -> None:
        """Load a newer GB/T 2260 list: checked, kept as the list in force, mirrored for the boards. Restart the
        services to use it."""
        from metrics.regionlist import update_regions
        from reference.regions import RegionListError
        from storage import connect

        try:
            with connect() as conn:
                regions = update_regions(conn, path, list_name=list_name, source_note=source)
        except RegionListError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        out.print(f"region list {list_name}: {len(regions)} regions loaded; restart the services to use it")

    @app.command("reconciliation")
    def reconciliation_command(
        indicator: Annotated[str, typer.Argument(help="Indicator id, e.g. bs5g_total.")],
        region: Annotated[int, typer.Option("--region", help="GB/T 2260 code; regions below it too.")] = 360000,
        period: Annotated[str | None, typer.Option("--period", help="2023, 2023-09 or 2023-Q3.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Reported totals beside the sums of their parts: the gap and how many parts reported."""
        from metrics.reconciliation import reconciliation
        from metrics.timeutil import now
        from storage import connect

        try:
            with connect() as conn:
                rows = reconciliation(conn, indicator, region=region, period=period, as_of=None if period else now())
        except (KeyError, ValueError) as exc:
            err.print(f"[red]{exc.args[0]}[/red]")
            raise typer.Exit(2) from None
        if as_json:
            out.print_json(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False))
            return
        table = Table("region", "operator", "beside", "reported", "sum of parts", "gap", "coverage", show_edge=False)
        for r in rows:
            table.add_row(
                r.region_name,
                r.operator,
                r.axis,
                _fmt(r.reported),
                _fmt(r.derived),
                _fmt(r.gap),
                f"{r.parts_reporting} of {r.parts_total}",
            )
        out.print(table)
        if not rows:
            out.print("no reported total beside a sum of its parts")
