"""`infrawatch bulletin --period PERIOD [--region R] [--out DIR] [--store]`: write a bulletin's files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command("bulletin")
    def bulletin(
        period: Annotated[str, typer.Option("--period", help="A month 2023-09, a quarter 2023-Q3 or a year 2023.")],
        region: Annotated[
            int, typer.Option("--region", help="360000 (the province, default) or a city code.")
        ] = 360000,
        out_dir: Annotated[Path, typer.Option("--out", help="Folder for the .docx, .pdf and .xlsx.")] = Path("."),
        store: Annotated[
            bool, typer.Option("--store", help="Also keep it in the database (GET /v1/bulletins).")
        ] = False,
    ) -> None:
        """Write the bulletin of a period (as of its last day) in Chinese as Word, PDF and Excel files."""
        from bulletins import UnknownRegion, build_bulletin, parse_period, render_files, write_files
        from bulletins.fonts import NoCjkFont
        from storage.checked import checked_connection

        try:
            p = parse_period(period)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        with checked_connection() as conn:
            try:
                b = build_bulletin(conn, p, region)
            except UnknownRegion as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
            try:
                files = render_files(b)
            except NoCjkFont as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
            if store:
                from bulletins.store import save_bulletin

                bid = save_bulletin(conn, b, files, created_by="cli")
                out.print(
                    f"stored as bulletin {bid}" if bid else "a bulletin of this period and region is already stored"
                )
        for path in write_files(files, out_dir):
            out.print(str(path))
        if not b.has_data:
            err.print(f"[yellow]no data for {p.label}: the bulletin says so[/yellow]")
