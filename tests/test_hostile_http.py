"""Hostile items over HTTP: NUL, lone surrogates, control characters and huge integers are rejected one
by one in a 200 report (never a 500), their neighbours stored, the raw input quarantined escaped."""

from __future__ import annotations

import psycopg

from tests.api_support import api_fixture, observation_count  # noqa: F401


def test_nul_surrogate_and_huge_integer_items_are_rejected_and_neighbours_stored(api):
    body = (
        '{"observations": ['
        '{"ts": "2024-03-31T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": 1},'
        '{"ts": "2024-03-31T00:00:00+08:00", "region": "360200", "metric": "bs5g_total", "value": 2,'
        ' "entity": "nul\\u0000here"},'
        '{"ts": "2024-03-31T00:00:00+08:00", "region": "360300", "metric": "bs5g\\ud800", "value": 3},'
        '{"ts": "2024-03-31T00:00:00+08:00", "region": "360400", "metric": "bs5g_total", "value": ' + "9" * 400 + "},"
        '{"ts": "2024-03-31T00:00:00+08:00", "region": "360500", "metric": "bs5g_total", "value": 5}'
        "]}"
    )
    r = api.client.post(
        "/v1/observations",
        content=body.encode(),
        headers={**api.headers("cmcc"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == 2
    assert sorted(x["index"] for x in report["rejected"]) == [1, 2, 3]
    by_index = {x["index"]: x for x in report["rejected"]}
    assert "control character (U+0000)" in by_index[1]["error"]
    assert "lone UTF-16 surrogate (U+D800)" in by_index[2]["error"]
    assert "out of range" in by_index[3]["error"]
    assert observation_count(api.db_url) == 2
    with psycopg.connect(api.db_url) as conn:
        raws = [r[0] for r in conn.execute("SELECT raw FROM quarantine ORDER BY id")]
    assert len(raws) == 3
    assert any("nul\\u0000here" in raw for raw in raws)  # kept, escaped so PostgreSQL can store it
    assert any("bs5g\\ud800" in raw for raw in raws)


def test_a_body_that_is_not_utf8_json_is_a_4xx(api):
    r = api.client.post(
        "/v1/observations",
        content=b'{"observations": [{"ts": "\xff\xfe"}]}',
        headers={**api.headers("cmcc"), "Content-Type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
