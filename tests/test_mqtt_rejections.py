"""Bad MQTT input is quarantined with its reason and reported on `_rejects`; valid neighbours are stored and
the ingest process keeps running (real Mosquitto, real PostgreSQL, the collector as a subprocess)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from collectors.mqtt.cli import register
from core.settings import get_settings
from tests.conftest import with_dbname
from tests.mqtt_support import IngestProcess, Publisher, Subscriber, scalar, wait_for

TS = "2024-03-31T00:00:00+08:00"


@pytest.fixture
def ingest(tmp_path, db_url, broker):
    proc = IngestProcess(tmp_path, db_url, broker.url).start()
    proc.wait_subscribed()
    yield proc
    proc.stop()


def test_bad_messages_are_quarantined_reported_and_valid_neighbours_stored(ingest, db_url, broker):
    rejects = Subscriber(broker.port, "infra/v1/cmcc/_rejects")
    pub = Publisher(broker.port)
    mixed = [
        {"ts": TS, "region": "360100", "value": 100},  # stored
        {"ts": TS, "region": "360200", "value": "many"},  # wrong type
        {"ts": TS, "region": "360300", "value": 7, "operator": "ctcc"},  # foreign operator in the payload
        {"ts": TS, "region": "360400", "value": 8},  # stored
    ]
    pub.publish_all(
        [
            ("infra/v1/cmcc/bs5g_total", json.dumps(mixed)),
            ("infra/v1/cmcc/bs5g_total", '{"ts": "2024-03-31T00:00:00+08:00", "region": '),  # malformed JSON
            ("infra/v1/cmcc/no_such_metric", json.dumps({"ts": TS, "region": "360100", "value": 1})),
            ("infra/v1/cmcc/bs5g_total", b"[" + b" " * (256 * 1024) + b"]"),  # 256 KiB + 2 bytes
            ("infra/v1/cmcc/bs5g_total", b"\xff\xfe not utf-8"),
        ]
    )
    # 2 valid of 4 in the array; 2 item rejections + 4 whole-message rejections
    wait_for(lambda: scalar(db_url, "SELECT count(*) FROM quarantine") == 6, 20, "6 rejections not quarantined")
    assert scalar(db_url, "SELECT array_agg(region ORDER BY region) FROM observation") == [360100, 360400]
    quarantined = _rows(db_url, "SELECT location, field, reason FROM quarantine WHERE operator = 'cmcc' ORDER BY id")
    expected = [  # (location, field, part of the reason)
        ("infra/v1/cmcc/bs5g_total index 1", "value", "value must be a JSON number"),
        ("infra/v1/cmcc/bs5g_total index 2", "operator", "operator 'ctcc' in the payload does not match"),
        ("infra/v1/cmcc/bs5g_total payload", "", "not valid JSON"),
        ("infra/v1/cmcc/no_such_metric payload", "metric", "unknown metric 'no_such_metric'"),
        ("infra/v1/cmcc/bs5g_total payload", "", "the limit is 262144"),
        ("infra/v1/cmcc/bs5g_total payload", "", "not valid UTF-8"),
    ]
    for location, field, reason in expected:
        matching = [q for q in quarantined if q[0] == location and q[1] == field and reason in q[2]]
        assert len(matching) == 1, (location, reason, quarantined)
    wait_for(lambda: len(rejects.messages) == 6, 10, "6 reports not published on _rejects")
    reports = rejects.json()
    by_index = {r["index"]: r for r in reports if r["topic"] == "infra/v1/cmcc/bs5g_total" and r["index"] is not None}
    assert sorted(by_index) == [1, 2]  # positions in the array of the wrong-typed and foreign-operator items
    assert "value" in by_index[1]["reason"]
    assert any(r["topic"] == "infra/v1/cmcc/no_such_metric" for r in reports)
    # the process is still running and still storing
    pub.publish_all([("infra/v1/cmcc/bs5g_total", json.dumps({"ts": TS, "region": "360500", "value": 9}))])
    wait_for(lambda: scalar(db_url, "SELECT count(*) FROM observation") == 3, 10, "later message not stored")
    assert ingest.alive()
    pub.close()
    rejects.close()


def _rows(db_url, sql):
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


def test_ingest_refuses_to_start_on_a_database_without_the_schema(pg_server, broker, monkeypatch):
    name = f"iw_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        monkeypatch.setenv("INFRAWATCH_DATABASE_URL", with_dbname(pg_server, name))
        monkeypatch.setenv("INFRAWATCH_MQTT_URL", broker.url)
        get_settings.cache_clear()
        app = typer.Typer()
        register(app)
        result = CliRunner().invoke(app, ["ingest", "mqtt"])
        assert result.exit_code == 2
        assert "infrawatch db upgrade" in result.output
    finally:
        get_settings.cache_clear()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
