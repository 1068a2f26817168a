"""/healthz, /readyz (database and broker) and /metrics (request and ingest figures)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.health import check_broker
from core.embedded import free_port
from core.settings import Settings, get_settings
from storage import SchemaBehind
from tests.api_support import Api, api_fixture, make_keys  # noqa: F401  (the `api` fixture)
from tests.conftest import Broker, with_dbname


@pytest.fixture
def with_broker(db_url: str, broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("INFRAWATCH_MQTT_URL", broker.url)
    monkeypatch.setenv("INFRAWATCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        yield client


def test_readyz_is_200_when_database_and_broker_answer_and_503_naming_the_broker_when_it_is_down(
    with_broker: TestClient, broker: Broker
) -> None:
    ok = with_broker.get("/readyz")
    assert ok.status_code == 200
    assert ok.json() == {"ready": True, "database": "ok", "broker": "ok", "read_replica": "not configured"}
    broker.stop()
    down = with_broker.get("/readyz")
    assert down.status_code == 503
    assert down.json()["database"] == "ok" and down.json()["broker"].startswith("unreachable")
    assert with_broker.get("/healthz").json() == {"status": "ok"}


def test_the_broker_probe_speaks_mqtt_and_reports_what_failed(broker: Broker) -> None:
    assert check_broker(broker.url) is None
    assert "cannot connect" in (check_broker(f"mqtt://127.0.0.1:{free_port()}") or "")
    assert "mqtt://" in (check_broker("http://example.org") or "")


def test_metrics_counts_requests_by_route_and_http_ingested_observations(api: Api) -> None:
    def value(text: str, prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    accepted = 'infrawatch_ingest_observations_total{outcome="accepted",source="api"}'
    requests = 'infrawatch_http_requests_total{method="POST",route="/v1/observations",status="200"}'
    before = api.client.get("/metrics").text
    items = [
        {"ts": f"2023-0{m}-28T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": m} for m in (1, 2)
    ]
    api.client.post("/v1/observations", json={"observations": items}, headers=api.headers("cmcc"))
    after = api.client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert value(after.text, accepted) - value(before, accepted) == 2  # the two items
    assert value(after.text, requests) - value(before, requests) == 1
    assert "infrawatch_http_request_duration_seconds_bucket" in after.text


def test_unknown_paths_and_methods_answer_json_saying_where_to_look(api: Api) -> None:
    r = api.client.get("/v1/nothing-here")
    assert r.status_code == 404 and "/docs" in r.json()["error"]
    r = api.client.delete("/v1/indicators", headers=api.headers("admin"))
    assert r.status_code == 405 and "error" in r.json()


def test_the_openapi_schema_and_docs_are_served(api: Api) -> None:
    assert api.client.get("/openapi.json").json()["info"]["title"] == "infrawatch"
    assert api.client.get("/docs").status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_the_service_itself(api: Api, page: str) -> None:
    html = api.client.get(page).text
    urls = re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""", html)
    assert "/openapi.json" in urls
    assert [u for u in urls if re.match(r"(https?:)?//", u)] == []  # no CDN, no fonts, no validator badge
    for url in urls:
        r = api.client.get(url)
        assert r.status_code == 200 and len(r.content) > 100, url
    if page == "/docs":
        assert "validatorUrl" in html and '"validatorUrl": null' in html


def test_the_app_runs_the_scheduler_it_is_given_in_its_lifespan(db_url: str) -> None:
    from infrawatch.scheduler import start_background

    get_settings.cache_clear()
    with TestClient(create_app(get_settings(), background=start_background)) as client:
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 20
        runs = 0
        while runs == 0 and time.monotonic() < deadline:
            with psycopg.connect(db_url) as conn:
                runs = conn.execute("SELECT count(*) FROM scheduler_run").fetchone()[0]  # type: ignore[index]
            time.sleep(0.2)
    assert runs > 0  # at least one job (evaluation, maintenance …) claimed its interval


def test_the_app_refuses_to_start_on_a_schema_that_is_behind_and_says_what_to_run(pg_server: str) -> None:
    name = f"iw_api_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        app = create_app(Settings(database_url=with_dbname(pg_server, name)))
        with pytest.raises(SchemaBehind, match="infrawatch db upgrade"), TestClient(app):
            pass
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
