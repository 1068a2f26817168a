"""`infrawatch demo`: the whole product on embedded services with one command.

Starts an embedded PostgreSQL and an MQTT broker, applies migrations, loads the default targets, creates
demo keys, starts the MQTT ingest collector and the API (with the scheduler and web console), backfills the
jiangxi-2023 scenario through MQTT, then keeps simulating live. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from infrawatch.embedded import free_port, mosquitto_binary, start_broker, stop_embedded_postgres
from infrawatch.settings import get_settings

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

SCENARIO = "jiangxi-2023"
#: History uses hourly data-centre meter readings so the first start is quick; live readings are 5-minutely.
BACKFILL_OVERRIDES = ["data_centres.cadence=1h"]
READY_LINE = "infrawatch demo is ready"
DEMO_KEYS = (("admin", None), ("viewer", None), ("operator", "cmcc"), ("operator", "ctcc"))


@dataclass
class Services:
    """Everything the demo started, stopped in reverse order."""

    data_dir: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    pgdata: Path | None = None

    def spawn(self, name: str, args: list[str], env: dict[str, str], stdout: Path | None = None
              ) -> subprocess.Popen[bytes]:
        log_dir = self.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{name}.log", "ab") as log, open(stdout or os.devnull, "wb") as report:
            proc = subprocess.Popen(args, env=env, stdout=report if stdout else log, stderr=log,
                                    start_new_session=True)
        self.children.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None and name != "backfill":
                raise RuntimeError(f"the {name} process exited ({proc.returncode}); see "
                                   f"{self.data_dir / 'logs' / (name + '.log')}")

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
            key, _record = create_key(conn, role=role, operator=operator, name=f"demo {role} {operator or ''}".strip(),
                                      secret=get_settings().secret_key)
            keys[operator or role] = key
        conn.commit()
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def _stored_observations(url: str) -> int:
    from storage import connect

    with connect(url) as conn:
        row = conn.execute("SELECT coalesce(sum(accepted + revised + duplicates), 0) FROM ingest_batch").fetchone()
    return int(row[0]) if row else 0


def _emitted(report_path: Path) -> int:
    """Observations the simulator sent, from its --json run report."""
    try:
        return int(json.loads(report_path.read_text())["emitted"])
    except (OSError, ValueError, KeyError):
        return 0


def _wait_ready(base: str, services: Services, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the API at {base} did not become ready in {timeout:.0f}s")


def run_demo(reset: bool, port: int, live: bool, broker_kind: str = "auto") -> None:
    settings = get_settings()
    data_dir = settings.data_dir
    if reset and data_dir.exists():
        stop_embedded_postgres(data_dir / "pg")
        shutil.rmtree(data_dir)
        console.print(f"removed {data_dir}")
    data_dir.mkdir(parents=True, exist_ok=True)
    services = Services(data_dir)
    try:
        with console.status("starting PostgreSQL …"):
            if settings.database_url:
                url = settings.database_url
            else:
                from infrawatch.embedded import embedded_postgres_url

                url = embedded_postgres_url(data_dir)
                services.pgdata = data_dir / "pg"
        console.print(f"[green]✓[/green] PostgreSQL  {url}")
        mosquitto = broker_kind == "mosquitto" or (broker_kind == "auto" and mosquitto_binary() is not None)
        broker, mqtt_port = start_broker(data_dir / "broker", prefer_mosquitto=mosquitto)
        services.children.append(("broker", broker))
        mqtt_url = f"mqtt://127.0.0.1:{mqtt_port}"
        protocol = "5" if mosquitto else "3.1.1"
        console.print(f"[green]✓[/green] MQTT broker {mqtt_url} ({'Mosquitto' if mosquitto else 'amqtt'}, "
                      f"MQTT {protocol})")

        from metrics import load_targets
        from storage import connect, upgrade

        applied = upgrade(url)
        with connect(url) as conn:
            targets = load_targets(conn)
            conn.commit()
        console.print(f"[green]✓[/green] schema ({len(applied)} migrations applied), {targets} default targets")
        keys = _demo_keys(url, data_dir)

        env = {**os.environ, "INFRAWATCH_DATABASE_URL": url, "INFRAWATCH_MQTT_URL": mqtt_url,
               "INFRAWATCH_MQTT_PROTOCOL": protocol, "INFRAWATCH_LOG_JSON": "true",
               "INFRAWATCH_DATA_DIR": str(data_dir)}
        services.spawn("ingest", _cli("ingest", "mqtt", "--client-id", "infrawatch-demo-ingest"), env)
        port = port or free_port()
        base = f"http://127.0.0.1:{port}"
        services.spawn("api", _cli("serve", "--host", "127.0.0.1", "--port", str(port)), env)

        already = _stored_observations(url)
        if already == 0:
            args = ["simulate", "--scenario", SCENARIO, "--to", "mqtt", "--url", mqtt_url, "--json"]
            for override in BACKFILL_OVERRIDES:
                args += ["--set", override]
            report_path = data_dir / "logs" / "backfill.json"
            backfill = services.spawn("backfill", _cli(*args), env, stdout=report_path)
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                          console=console, transient=False) as progress:
                task = progress.add_task("backfilling 2023 through MQTT", total=None)
                while backfill.poll() is None:
                    services.check_alive()
                    progress.update(task, description=f"backfilling 2023 through MQTT: "
                                                      f"{_stored_observations(url):,} observations stored")
                    time.sleep(1)
                if backfill.returncode != 0:
                    raise RuntimeError(f"the backfill failed; see {data_dir / 'logs' / 'backfill.log'}")
                sent = _emitted(report_path)
                # The collector is still draining the broker's queue: wait until it has stored what was sent.
                last, still = -1, 0
                while (stored := _stored_observations(url)) < sent and still < 20:
                    services.check_alive()
                    still = still + 1 if stored == last else 0
                    last = stored
                    progress.update(task, description=f"storing the backfill: {stored:,} of {sent:,} observations")
                    time.sleep(1)
                progress.update(task, description=f"backfilled 2023: {_stored_observations(url):,} observations")
        else:
            console.print(f"[green]✓[/green] reusing {already:,} stored observations (--reset starts over)")
        if live:
            services.spawn("live", _cli("simulate", "--scenario", SCENARIO, "--to", "mqtt", "--url", mqtt_url,
                                        "--live"), env)
        _wait_ready(base, services)

        out.print(f"\n[bold green]{READY_LINE}[/bold green]")
        out.print(f"  web console   {base}/            (sign in with a key below)")
        out.print(f"  API docs      {base}/docs")
        out.print(f"  MQTT broker   {mqtt_url}   (topics infra/v1/<operator>/<metric>)")
        out.print(f"  metrics       {base}/metrics")
        out.print(f"  status        INFRAWATCH_DATABASE_URL='{url}' uv run infrawatch status --as-of 2023-12-31")
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
    """SIGTERM stops the demo the way Ctrl-C does."""
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        reset: Annotated[bool, typer.Option("--reset", help="Delete the demo's data and start over.")] = False,
        port: Annotated[int, typer.Option(help="API and console port (0 = any free port).")] = 8000,
        live: Annotated[bool, typer.Option(help="Keep simulating live after the backfill.")] = True,
        broker: Annotated[
            str, typer.Option(help="auto: Mosquitto if installed, else amqtt; or force mosquitto / amqtt.")
        ] = "auto",
    ) -> None:
        """Run the whole product on embedded services: database, broker, ingest, API, console, scheduler."""
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            run_demo(reset, port, live, broker)
        except (RuntimeError, TimeoutError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
