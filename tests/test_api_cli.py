"""The API's commands: keys create/list/revoke, operators add/list, and `serve` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
from typer.testing import CliRunner

from core.embedded import free_port, wait_for_port
from infrawatch.cli import app

runner = CliRunner()


def test_a_created_key_is_printed_once_works_is_listed_without_its_secret_and_can_be_revoked(db_url: str) -> None:
    created = runner.invoke(app, ["keys", "create", "--role", "operator", "--operator", "cmcc", "--name", "gateway"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("iw_")
    listed = runner.invoke(app, ["keys", "list"])
    assert "gateway" in listed.stdout and "cmcc" in listed.stdout
    secret = key.split("_", 2)[2]  # iw_<id>_<secret>: the secret may hold "_" itself
    assert len(secret) >= 20
    assert key not in listed.stdout and secret not in listed.stdout  # the secret part never shows
    with psycopg.connect(db_url) as conn:
        key_id = conn.execute("SELECT id FROM api_key WHERE name = 'gateway'").fetchone()[0]  # type: ignore[index]
    assert runner.invoke(app, ["keys", "revoke", str(key_id)]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", str(key_id)]).exit_code == 1  # already revoked


def test_key_creation_refuses_inconsistent_roles_with_what_to_do(db_url: str) -> None:
    no_op = runner.invoke(app, ["keys", "create", "--role", "operator"])
    assert no_op.exit_code == 2 and "--operator" in no_op.output
    viewer_op = runner.invoke(app, ["keys", "create", "--role", "viewer", "--operator", "cmcc"])
    assert viewer_op.exit_code == 2
    unknown = runner.invoke(app, ["keys", "create", "--role", "operator", "--operator", "gdsdc"])
    assert unknown.exit_code == 2 and "operators add" in unknown.output
    bad_role = runner.invoke(app, ["keys", "create", "--role", "root"])
    assert bad_role.exit_code == 2


def test_an_admin_registers_a_data_centre_operator_then_gives_it_a_key(db_url: str) -> None:
    added = runner.invoke(app, ["operators", "add", "gdsdc", "--name", "Ganzhou Data Centre Co."])
    assert added.exit_code == 0, added.output
    assert runner.invoke(app, ["operators", "add", "gdsdc", "--name", "again"]).exit_code == 2
    assert runner.invoke(app, ["operators", "add", "Bad-Id", "--name", "x"]).exit_code == 2
    assert "gdsdc" in runner.invoke(app, ["operators", "list"]).stdout
    assert runner.invoke(app, ["keys", "create", "--role", "operator", "--operator", "gdsdc"]).exit_code == 0


def test_serve_runs_the_api_and_stops_cleanly_on_sigterm(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "INFRAWATCH_DATA_DIR": str(tmp_path), "INFRAWATCH_LOG_JSON": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "serve", "--no-scheduler", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/indicators").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal after a clean shutdown
    assert '"event": "api.start"' in output and '"event": "api.stop"' in output
