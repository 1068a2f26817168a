"""`infrawatch dashboards export` and `push`: the files Grafana provisions, and the boards sent through
Grafana's HTTP API (to a stand-in Grafana on loopback that records what it receives)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboards.boards import all_boards
from dashboards.provisioning import rendered_files
from infrawatch.cli import app

runner = CliRunner()


class FakeGrafana:
    """Answers the three API calls `push` makes, like Grafana 11/12 does; records each request."""

    def __init__(self, *, token: str = "glsa_test", folder_exists: bool = False) -> None:
        self.token = token
        self.folder_exists = folder_exists
        self.requests: list[tuple[str, str, dict[str, Any] | None, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((method, self.path, body, self.headers.get("Authorization", "")))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._answer(401, {"message": "invalid API key"})
                if method == "GET" and self.path.startswith("/api/folders/"):
                    if fake.folder_exists:
                        return self._answer(200, {"uid": self.path.rsplit("/", 1)[1], "title": "infrawatch"})
                    return self._answer(404, {"message": "folder not found"})
                if method == "POST" and self.path == "/api/folders":
                    fake.folder_exists = True
                    return self._answer(200, {"uid": body["uid"], "title": body["title"]})
                if method == "POST" and self.path == "/api/dashboards/db":
                    uid = body["dashboard"]["uid"]
                    return self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1})
                return self._answer(404, {"message": "not found"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    g = FakeGrafana()
    yield g
    g.close()


def test_push_creates_the_folder_and_every_board_with_the_token(grafana: FakeGrafana) -> None:
    result = runner.invoke(app, ["dashboards", "push", "--url", grafana.url, "--token", "glsa_test"])
    assert result.exit_code == 0, result.output
    boards = [body for method, path, body, _ in grafana.requests if path == "/api/dashboards/db"]
    assert [b["dashboard"]["uid"] for b in boards] == [b["uid"] for b in all_boards().values()]
    assert all(b["overwrite"] and b["folderUid"] == "infrawatch" for b in boards)
    assert ("POST", "/api/folders") in [(m, p) for m, p, _, _ in grafana.requests]
    assert {auth for *_, auth in grafana.requests} == {"Bearer glsa_test"}
    assert f"{grafana.url}/d/iw-plan-targets/x" in result.output


def test_push_can_point_the_boards_at_an_existing_datasource(grafana: FakeGrafana) -> None:
    grafana.folder_exists = True
    result = runner.invoke(
        app, ["dashboards", "push", "--url", grafana.url, "--token", "glsa_test", "--datasource-uid", "pg-prod"]
    )
    assert result.exit_code == 0, result.output
    sent = json.dumps([b for _, p, b, _ in grafana.requests if p == "/api/dashboards/db"])
    assert "infrawatch-pg" not in sent and '"uid": "pg-prod"' in sent
    assert ("POST", "/api/folders") not in [(m, p) for m, p, _, _ in grafana.requests]  # it existed


def test_push_with_a_wrong_token_says_so_and_exits_1(grafana: FakeGrafana) -> None:
    result = runner.invoke(app, ["dashboards", "push", "--url", grafana.url, "--token", "wrong"])
    assert result.exit_code == 1
    assert "401" in result.output and "token" in result.output


def test_push_to_nothing_listening_exits_1_with_the_url() -> None:
    result = runner.invoke(app, ["dashboards", "push", "--url", "http://127.0.0.1:9", "--token", "t", "--timeout", "2"])
    assert result.exit_code == 1
    assert "127.0.0.1:9" in result.output


def test_export_writes_the_provisioning_tree_with_the_timescaledb_flag_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRAWATCH_GRAFANA_TIMESCALEDB", "false")
    result = runner.invoke(app, ["dashboards", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(rendered_files())
    assert "timescaledb: false" in (tmp_path / "datasources" / "infrawatch.yaml").read_text()
