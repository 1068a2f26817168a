"""`infrawatch simulate`: run a scenario into MQTT, CSV files or the HTTP API."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

console = Console(stderr=True)
out = Console(soft_wrap=True)


class Target(StrEnum):
    mqtt = "mqtt"
    csv = "csv"
    http = "http"


class Layout(StrEnum):
    long = "long"
    wide = "wide"


class Encoding(StrEnum):
    utf8 = "utf-8"
    utf8_bom = "utf-8-sig"
    gb18030 = "gb18030"


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`a.b=value` pairs (values read as YAML) → a nested mapping merged over the scenario."""
    result: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"--set wants KEY=VALUE (e.g. data_centres.cadence=1h), got {pair!r}")
        key, value = pair.split("=", 1)
        node = result
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return result


def parse_keys(keys: list[str]) -> tuple[dict[str, str], str | None]:
    """`OPERATOR=KEY` pairs and at most one bare KEY (an admin key / shared password)."""
    per_operator: dict[str, str] = {}
    shared: str | None = None
    for k in keys:
        op, sep, secret = k.partition("=")
        if sep and op and op.replace("_", "").isalnum() and op[0].isalpha() and op.islower():
            per_operator[op] = secret
        elif shared is None:
            shared = k
        else:
            raise typer.BadParameter("give at most one --key without OPERATOR= (the admin key)")
    return per_operator, shared


def simulate(
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="Shipped scenario name or a YAML file.")],
    to: Annotated[Target, typer.Option("--to", help="Where the observations go.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for CSV files.")] = Path("simulated"),
    start: Annotated[str | None, typer.Option("--from", help="First report time (date, month or date-time).")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last report time (default: the scenario's end).")
    ] = None,
    rate: Annotated[float, typer.Option(help="Observations per second; 0 = as fast as the sink takes them.")] = 0,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    live: Annotated[bool, typer.Option("--live", help="After the backfill, continue in real time.")] = False,
    layout: Annotated[Layout, typer.Option("--format", help="CSV layout.")] = Layout.long,
    encoding: Annotated[Encoding, typer.Option("--encoding", help="CSV encoding.")] = Encoding.utf8,
    url: Annotated[str | None, typer.Option(help="Broker (mqtt://user:pass@host:port) or API base URL.")] = None,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="OPERATOR=KEY (repeat; MQTT password / API key per operator) or one admin KEY."),
    ] = None,
    batch: Annotated[
        int, typer.Option(help="Observations per MQTT message / HTTP request (1 = single objects).")
    ] = 200,
    connections: Annotated[int, typer.Option(help="MQTT connections per operator.")] = 1,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a scenario field, e.g. data_centres.cadence=1h.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
) -> None:
    """Generate a scenario's observations (with its faults) and send them; deterministic for a seed."""
    from core.settings import get_settings
    from simulators.generate import scenario_window
    from simulators.run import backfill
    from simulators.run import live as run_live
    from simulators.scenario import ScenarioError, load_scenario
    from simulators.sinks import Sink, SinkError
    from simulators.timeline import parse_instant

    extra = parse_overrides(overrides or [])
    if seed is not None:
        extra["seed"] = seed
    try:
        sc = load_scenario(scenario, extra)
    except ScenarioError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    tz = sc.zone
    window = scenario_window(sc)
    try:
        start_us = parse_instant(start, tz) if start else window.start_us
        end_us = parse_instant(until, tz) if until else (None if live else window.end_us)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    per_operator, shared = parse_keys(key or [])
    sink: Sink
    try:
        if to is Target.csv:
            from simulators.sinks.csvfile import CsvSink

            sink = CsvSink(sc, out_dir, layout=layout.value, encoding=encoding.value, rate=rate)
        elif to is Target.mqtt:
            from simulators.sinks.mqtt import MqttSink

            mqtt_url = url or get_settings().mqtt_url
            if shared:  # one password for every operator's username
                per_operator = {op: per_operator.get(op, shared) for op in sc.all_operators()}
            sink = MqttSink(
                mqtt_url,
                keys=per_operator,
                batch=batch,
                rate=rate,
                connections_per_operator=connections,
                client_prefix=f"sim-{sc.name}",
            )
        else:
            from simulators.sinks.http import HttpSink

            sink = HttpSink(url or "http://127.0.0.1:8000", keys=per_operator, admin_key=shared, batch=batch, rate=rate)
        if live:
            report = run_live(sc, sink, start_us if start else None, until_us=end_us)
        else:
            assert end_us is not None
            report = backfill(sc, sink, start_us, end_us)
    except SinkError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    s = report.sink
    rate_txt = f"{report.emitted / report.elapsed_s:,.0f}/s" if report.elapsed_s > 0 else "-"
    out.print(
        f"[bold]{sc.name}[/bold] seed {sc.seed}: {report.observations:,} observations, {report.emitted:,} sent "
        f"to {to.value} in {report.elapsed_s:.1f}s ({rate_txt})"
    )
    if report.faults:
        out.print("  faults: " + ", ".join(f"{k} {v:,}" for k, v in sorted(report.faults.items())))
    if s and s.messages:
        out.print(f"  messages/requests: {s.messages:,}")
    if s and s.files:
        out.print(f"  files: {len(s.files)} in {out_dir}")
    if s and s.sink == "http":
        out.print(
            f"  accepted {s.accepted:,}, duplicates {s.duplicates:,}, revised {s.revised:,}, rejected {s.rejected:,}"
        )


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
