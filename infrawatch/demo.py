"""`infrawatch demo`: the whole product on embedded services with one command.

Starts an embedded PostgreSQL and an MQTT broker, applies migrations, loads the default targets and the demo
targets (the seed plans re-based to the current year, `infrawatch.demo_data`), creates demo keys, starts the
MQTT collector and waits until it has subscribed (a persistent session), backfills the `demo` scenario
through MQTT from the previous December up to now and waits until everything sent is stored, evaluates the
alerts once, starts the API (with the scheduler and web console) and keeps simulating live. A watchdog and
each child's parent-death signal end everything it started, whatever ends the demo (Ctrl-C, SIGTERM, SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from core.embedded import free_port, mosquitto_binary, port_is_free, start_broker, stop_embedded_postgres
from core.settings import get_settings
from core.watchdog import Watchdog, die_with_parent
from infrawatch import demo_data

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

READY_LINE = "infrawatch demo is ready"
DEFAULT_PORT = 8000
DEMO_KEYS = (("admin", None), ("viewer", None), ("operator", "cmcc"), ("operator", "ctcc"))
#: Seconds without any new stored observation after which the demo stops waiting for the backfill.
STALL_S = 60.0
#: The last hours of the history are sent at the live cadence (meters every 5 minutes), the rest hourly.
RECENT = timedelta(hours=3)


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


@dataclass
class Services:
    """Everything the demo started, stopped in reverse order (and by the watchdog if the demo dies)."""

    data_dir: Path
    watchdog: Watchdog | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    pgdata: Path | None = None

    def log_path(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def adopt(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self.children.append((name, proc))
        if self.watchdog:
            self.watchdog.watch(proc.pid)

    def spawn(
        self, name: str, args: list[str], env: dict[str, str], stdout: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log_dir = self.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab") as log, open(stdout or os.devnull, "wb") as report:
            proc = subprocess.Popen(
                args,
                env=env,
                stdout=report if stdout else log,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.adopt(name, proc)
        return proc

    def check_alive(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None and name != "backfill":
                raise DemoError(
                    f"the {name} process exited ({proc.returncode}){_last_error(self.log_path(name))}; "
                    f"see {self.log_path(name)}"
                )

    def stop(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait(5)
        if self.pgdata is not None:
            stop_embedded_postgres(self.pgdata)
        if self.watchdog is not None:
            self.watchdog.close()


def _last_error(log: Path) -> str:
    """': <message>' of the last error line of a child's JSON log, or ''."""
    try:
        lines = log.read_text(errors="replace").splitlines()[-200:]
    except OSError:
        return ""
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and str(entry.get("level", "")).upper() in {"ERROR", "CRITICAL"}:
                return f": {entry.get('message') or entry.get('msg')}"
        if line.startswith(("Error", "ERROR")) or "Traceback" in line:
            return f": {line.strip()[:200]}"
    return ""


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's process group when it leads one (spawned children), else the child itself."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "infrawatch", *args]


def _demo_keys(url: str, data_dir: Path) -> dict[str, str]:
    """Create the demo's API keys once and keep them in the data dir, so a second run shows the same ones."""
    path = data_dir / "demo-keys.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    from api.keys import create_key
    from storage import connect

    keys: dict[str, str] = {}
    with connect(url) as conn:
        for role, operator in DEMO_KEYS:
            key, _record = create_key(
                conn,
                role=role,
                operator=operator,
                name=f"demo {role} {operator or ''}".strip(),
                secret=get_settings().secret_key,
            )
            keys[operator or role] = key
        conn.commit()
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def _received(url: str) -> tuple[int, int]:
    """(stored, rejected) observations over every ingest batch so far; stored counts duplicates and revisions."""
    from storage import connect

    with connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(accepted + revised + duplicates), 0), coalesce(sum(rejected), 0) FROM ingest_batch"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _emitted(report_path: Path) -> int | None:
    """Observations the simulator sent, from its --json run report."""
    try:
        return int(json.loads(report_path.read_text())["emitted"])
    except (OSError, ValueError, KeyError):
        return None


def _choose_port(port: int | None) -> tuple[int, str | None]:
    """The API's port and a note when the default was taken; an explicit port that is taken fails at once."""
    if port is None:
        if port_is_free(DEFAULT_PORT):
            return DEFAULT_PORT, None
        chosen = free_port()
        return chosen, f"port {DEFAULT_PORT} is taken: serving on {chosen} instead (choose one with --port PORT)"
    if port == 0:
        return free_port(), None
    if not port_is_free(port):
        raise DemoError(
            f"port {port} is taken (something already listens on 127.0.0.1:{port}); choose another "
            "with --port PORT, or --port 0 for any free port"
        )
    return port, None


def _wait_subscribed(services: Services, offset: int, timeout: float = 180) -> None:
    """Wait until the collector's log says it has subscribed: from then on the broker keeps its messages."""
    log = services.log_path("ingest")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        with contextlib.suppress(OSError), open(log, "rb") as f:
            f.seek(offset)
            if b"mqtt.subscribed" in f.read():
                return
        time.sleep(0.2)
    raise DemoError(f"the MQTT collector did not subscribe within {timeout:.0f}s; see {log}")


def _wait_ready(base: str, services: Services, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the API at {base} did not become ready in {timeout:.0f}s")


@dataclass
class Backfill:
    """What a backfill sent and what the database received of it."""

    sent: int
    stored: int
    rejected: int

    @property
    def missing(self) -> int:
        return self.sent - self.stored - self.rejected

    def line(self) -> str:
        text = f"{self.sent:,} observations sent, {self.stored:,} stored"
        if self.rejected:
            text += f", {self.rejected:,} rejected (see /rejections)"
        if self.missing > 0:
            text += f", {self.missing:,} missing"
        return text


def _history(
    services: Services, url: str, env: dict[str, str], mqtt_url: str, year: int, since: datetime, until: datetime
) -> Backfill:
    """The history from `since` to `until`: hourly meter readings up to RECENT before `until`, then the live
    cadence (so that no meter looks silent when the live simulation takes over)."""
    recent = max(since, until - RECENT)
    parts: list[tuple[datetime, datetime, tuple[str, ...]]] = []
    if recent > since:
        parts.append((since, recent, demo_data.HISTORY_SETTINGS))
    parts.append((recent, until, ()))
    total = Backfill(0, 0, 0)
    for start, end, settings in parts:
        part = _backfill(services, url, env, mqtt_url, year, start.isoformat(), end.isoformat(), settings)
        total = Backfill(total.sent + part.sent, total.stored + part.stored, total.rejected + part.rejected)
        if part.missing > 0:
            break
    return total


def _backfill(
    services: Services,
    url: str,
    env: dict[str, str],
    mqtt_url: str,
    year: int,
    since: str,
    until: str,
    settings: tuple[str, ...] = (),
) -> Backfill:
    """Publish the demo's observations in [since, until] through MQTT and wait until the collector has stored
    all of them (or stops making progress for STALL_S)."""
    data_dir = services.data_dir
    base_stored, base_rejected = _received(url)
    args = [
        "simulate",
        "--scenario",
        demo_data.SCENARIO,
        "--to",
        "mqtt",
        "--url",
        mqtt_url,
        "--json",
        "--from",
        since,
        "--until",
        until,
    ]
    for setting in (*demo_data.scenario_settings(year), *settings):
        args += ["--set", setting]
    report_path = data_dir / "logs" / "backfill.json"
    report_path.unlink(missing_ok=True)
    proc = services.spawn("backfill", _cli(*args), env, stdout=report_path)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("publishing the history through MQTT", total=None)
        while proc.poll() is None:
            services.check_alive()
            stored = _received(url)[0] - base_stored
            progress.update(task, description=f"publishing {since[:16]} … {until[:16]} through MQTT: {stored:,} stored")
            time.sleep(1)
        sent = _emitted(report_path)
        if proc.returncode != 0 or sent is None:
            raise DemoError(
                f"the backfill failed ({proc.returncode}){_last_error(services.log_path('backfill'))}; "
                f"see {services.log_path('backfill')}"
            )
        # the collector may still be draining the broker's queue: wait until it has taken all that was sent
        last, changed = -1, time.monotonic()
        while True:
            services.check_alive()
            stored, rejected = (a - b for a, b in zip(_received(url), (base_stored, base_rejected), strict=True))
            if stored + rejected >= sent:
                break
            if stored + rejected != last:
                last, changed = stored + rejected, time.monotonic()
            elif time.monotonic() - changed > STALL_S:
                break
            progress.update(task, description=f"storing the history: {stored:,} of {sent:,} observations")
            time.sleep(0.5)
    return Backfill(sent, stored, rejected)


def _load_demo_targets(url: str, data_dir: Path, year: int) -> tuple[int, int]:
    """Load the shipped targets and the demo's (re-based to `year`, with a target alert rule each); returns how
    many of each."""
    from alerts.rules import Rule
    from alerts.store import sync_rules_file, upsert_rule
    from metrics import DEFAULT_TARGETS_FILE, load_targets, retire_target
    from metrics.targets import read_targets_file
    from storage import connect

    targets = demo_data.demo_targets(year)
    path = demo_data.write_targets_file(data_dir / "demo-targets.yaml", targets)
    with connect(url) as conn:
        shipped = load_targets(conn)
        # the shipped targets whose deadline is before the demo's history would only show no data (or a
        # "missed" judged on one baseline report): they stay in the database, retired, ids unchanged
        for t in read_targets_file(DEFAULT_TARGETS_FILE):
            if t.deadline < date(year, 1, 1):
                retire_target(conn, t.id)
        load_targets(conn, path)
        conn.commit()
        sync_rules_file(conn)
        for t in targets:
            upsert_rule(
                conn,
                Rule.model_validate(
                    {
                        "id": f"target-{t.id}",
                        "kind": "target",
                        "target": t.id,
                        "title": f"Target {t.id}: {t.title}",
                        "resolve_after": "1h",
                        "repeat": "7d",
                    }
                ),
            )
    return shipped, len(targets)


def _evaluate(url: str) -> int:
    """Evaluate the alert rules once on the complete history; returns the number of firing alerts."""
    from alerts.engine import evaluate
    from alerts.store import list_alerts
    from storage import connect

    with connect(url) as conn:
        evaluate(conn, datetime.now(UTC))
        conn.commit()
        return len(list_alerts(conn, "firing"))


def _statuses(base: str, key: str) -> str:
    """'3 on_track, 1 at_risk, …' over the demo targets, through the API the console reads."""
    body = httpx.get(f"{base}/v1/progress", headers={"Authorization": f"Bearer {key}"}, timeout=60).json()
    counts: dict[str, int] = {}
    for p in body.get("progress", []):
        if str(p.get("target_id", "")).startswith("demo-"):
            counts[p["status"]] = counts.get(p["status"], 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def run_demo(reset: bool, port: int | None, live: bool, broker_kind: str = "auto") -> None:
    settings = get_settings()
    data_dir = settings.data_dir
    port, port_note = _choose_port(port)  # before anything starts: a taken port fails at once
    if reset and data_dir.exists():
        stop_embedded_postgres(data_dir / "pg")
        shutil.rmtree(data_dir)
        console.print(f"removed {data_dir}")
    data_dir.mkdir(parents=True, exist_ok=True)
    services = Services(data_dir, watchdog=Watchdog())
    try:
        with console.status("starting PostgreSQL …"):
            if settings.database_url:
                url = settings.database_url
            else:
                from core.embedded import embedded_postgres_url

                services.pgdata = data_dir / "pg"
                assert services.watchdog is not None
                services.watchdog.watch_pgdata(services.pgdata)
                url = embedded_postgres_url(data_dir)
        console.print(f"[green]✓[/green] PostgreSQL  {url}")
        mosquitto = broker_kind == "mosquitto" or (broker_kind == "auto" and mosquitto_binary() is not None)
        broker, mqtt_port = start_broker(data_dir / "broker", prefer_mosquitto=mosquitto)
        services.adopt("broker", broker)
        mqtt_url = f"mqtt://127.0.0.1:{mqtt_port}"
        protocol = "5" if mosquitto else "3.1.1"
        console.print(
            f"[green]✓[/green] MQTT broker {mqtt_url} ({'Mosquitto' if mosquitto else 'amqtt'}, MQTT {protocol})"
        )

        from storage import upgrade

        applied = upgrade(url)
        now = datetime.now(UTC).replace(microsecond=0)
        year = demo_data.plan_year(now)
        shipped, demo_targets = _load_demo_targets(url, data_dir, year)
        console.print(
            f"[green]✓[/green] schema ({len(applied)} migrations applied), {shipped} default targets, "
            f"{demo_targets} demo targets for {year} (ids demo-…)"
        )
        keys = _demo_keys(url, data_dir)

        env = {
            **os.environ,
            "INFRAWATCH_DATABASE_URL": url,
            "INFRAWATCH_MQTT_URL": mqtt_url,
            "INFRAWATCH_MQTT_PROTOCOL": protocol,
            "INFRAWATCH_LOG_JSON": "true",
            "INFRAWATCH_DATA_DIR": str(data_dir),
        }
        ingest_log = services.log_path("ingest")
        offset = ingest_log.stat().st_size if ingest_log.exists() else 0
        services.spawn("ingest", _cli("ingest", "mqtt", "--client-id", "infrawatch-demo-ingest"), env)
        _wait_subscribed(services, offset)
        console.print("[green]✓[/green] MQTT collector subscribed (persistent session)")

        # History from the previous December (or from where the last run stopped) up to now, then live.
        state_path = data_dir / "demo-state.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        since = (
            datetime.fromisoformat(state["until"])
            if state.get("year") == year and state.get("until")
            else datetime.combine(demo_data.history_start(year), datetime.min.time(), demo_data.PLAN_ZONE)
        )
        result = _history(services, url, env, mqtt_url, year, since, now)
        until = now.isoformat()
        if result.missing > 0:
            console.print(
                f"[yellow]not everything sent was stored: {result.line()}. The collector stopped "
                f"storing for {STALL_S:.0f}s{_last_error(ingest_log)}; see {ingest_log}[/yellow]"
            )
        else:
            console.print(f"[green]✓[/green] history {since:%Y-%m-%d} … {now:%Y-%m-%d %H:%M} UTC: {result.line()}")
        state_path.write_text(json.dumps({"year": year, "until": until}))
        if live:
            args = [
                "simulate",
                "--scenario",
                demo_data.SCENARIO,
                "--to",
                "mqtt",
                "--url",
                mqtt_url,
                "--live",
                "--from",
                until,
            ]
            for setting in demo_data.scenario_settings(year):
                args += ["--set", setting]
            services.spawn("live", _cli(*args), env)
        firing = _evaluate(url)

        if port_note:
            console.print(f"[yellow]{port_note}[/yellow]")
        base = f"http://127.0.0.1:{port}"
        services.spawn("api", _cli("serve", "--host", "127.0.0.1", "--port", str(port)), env)
        _wait_ready(base, services)
        statuses = _statuses(base, keys["admin"])

        out.print(f"\n[bold green]{READY_LINE}[/bold green]: {result.line()}", highlight=False)
        out.print(f"  demo targets  {statuses}; {firing} alerts firing", highlight=False)
        out.print(f"  web console   {base}/            (sign in with a key below)")
        out.print(f"  API docs      {base}/docs  and  {base}/redoc")
        out.print(f"  MQTT broker   {mqtt_url}   (topics infra/v1/<operator>/<metric>)")
        out.print(f"  metrics       {base}/metrics")
        out.print(f"  status        INFRAWATCH_DATABASE_URL='{url}' uv run infrawatch status")
        for who, key in keys.items():
            out.print(f"  key {who:<9} {key}")
        out.print(f"  logs          {data_dir / 'logs'}\nPress Ctrl-C to stop.", highlight=False)
        sys.stdout.flush()
        while True:
            services.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping …")
    finally:
        services.stop()
        console.print("stopped")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP stop the demo the way Ctrl-C does."""
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        reset: Annotated[bool, typer.Option("--reset", help="Delete the demo's data and start over.")] = False,
        port: Annotated[
            int | None,
            typer.Option(
                help=f"API and console port; default {DEFAULT_PORT}, or any free one if that is taken; 0 = any free port.",
                show_default=False,
            ),
        ] = None,
        live: Annotated[bool, typer.Option(help="Keep simulating live after the backfill.")] = True,
        broker: Annotated[
            str, typer.Option(help="auto: Mosquitto if installed, else amqtt; or force mosquitto / amqtt.")
        ] = "auto",
    ) -> None:
        """Run the whole product on embedded services: database, broker, ingest, API, console, scheduler."""
        logging.getLogger().setLevel(logging.WARNING)  # the children's logs are in the data dir; here, progress
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)
        try:
            run_demo(reset, port, live, broker)
        except (DemoError, TimeoutError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
