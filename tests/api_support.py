"""Fixtures and helpers shared by the tests/test_api_*.py files: an app on a fresh database, and keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Limits
from api.keys import create_key
from core.settings import get_settings

ROLES = ("none", "cmcc", "ctcc", "viewer", "admin")


@dataclass
class Api:
    client: TestClient
    keys: dict[str, str]  # "cmcc", "ctcc", "viewer", "admin" -> key
    db_url: str

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"} if who in self.keys else {}


def make_keys(db_url: str) -> dict[str, str]:
    secret = get_settings().secret_key
    keys = {}
    with psycopg.connect(db_url) as conn:
        for who, role, op in (
            ("cmcc", "operator", "cmcc"),
            ("ctcc", "operator", "ctcc"),
            ("viewer", "viewer", None),
            ("admin", "admin", None),
        ):
            keys[who], _ = create_key(conn, role=role, operator=op, name=f"test {who}", secret=secret)
    return keys


@pytest.fixture(name="api")
def api_fixture(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The app (lifespan run) on this test's database, with one key per role."""
    monkeypatch.setenv("INFRAWATCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    keys = make_keys(db_url)
    app = create_app(get_settings(), db_timeout=3.0, limits=Limits(max_observations=1000, max_json_bytes=1 << 20))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, keys, db_url)


def observation_count(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM observation").fetchone()
    assert row is not None
    return int(row[0])
