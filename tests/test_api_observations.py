"""POST /v1/observations: the JSON batch path through the ingest pipeline, with the key's operator."""

from __future__ import annotations

import psycopg

from tests.api_support import Api, api_fixture, observation_count  # noqa: F401  (the `api` fixture)


def _batch(n: int, value: int = 100) -> list[dict[str, object]]:
    # n monthly bs5g_total figures for Nanchang, 2023-01 … (all valid)
    return [
        {"ts": f"2023-{m:02d}-28T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": value + m}
        for m in range(1, n + 1)
    ]


def _snapshot(db_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT metric, region, operator, entity, ts, value, batch_id FROM observation ORDER BY 1, 2, 3, 4, 5"
        ).fetchall()


def test_pushing_the_same_batch_twice_counts_duplicates_and_changes_nothing(api: Api) -> None:
    batch = _batch(5)
    first = api.client.post("/v1/observations", json={"observations": batch}, headers=api.headers("cmcc"))
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 5
    before = _snapshot(api.db_url)
    second = api.client.post("/v1/observations", json={"observations": batch}, headers=api.headers("cmcc"))
    assert second.status_code == 200
    body = second.json()
    assert (body["accepted"], body["duplicates"], body["revised"], body["rejected"]) == (0, 5, 0, [])
    assert _snapshot(api.db_url) == before  # same rows, same batch ids: nothing rewritten


def test_operator_comes_from_the_key_and_a_foreign_operator_item_is_rejected(api: Api) -> None:
    batch = _batch(2)
    batch.append({**batch[0], "ts": "2023-06-28T00:00:00+08:00", "operator": "ctcc"})  # index 2: not cmcc's
    batch.append({**batch[0], "ts": "2023-07-28T00:00:00+08:00", "operator": "cmcc"})  # index 3: its own, fine
    r = api.client.post("/v1/observations", json={"observations": batch}, headers=api.headers("cmcc"))
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 3
    assert [x["index"] for x in body["rejected"]] == [2]
    assert "does not match" in body["rejected"][0]["error"]
    with psycopg.connect(api.db_url) as conn:
        ops = {row[0] for row in conn.execute("SELECT DISTINCT operator FROM observation")}
    assert ops == {"cmcc"}


def test_bad_items_are_reported_by_index_and_good_ones_stored(api: Api) -> None:
    batch = _batch(3)
    batch[1] = {**batch[1], "ts": "2023-02-28T00:00:00"}  # no offset → rejected
    batch.append("not an object")  # index 3
    r = api.client.post("/v1/observations", json={"observations": batch}, headers=api.headers("ctcc"))
    body = r.json()
    assert body["accepted"] == 2
    assert sorted(x["index"] for x in body["rejected"]) == [1, 3]
    assert observation_count(api.db_url) == 2


def test_admin_key_names_the_operator_per_item_and_defaults_to_reference_series(api: Api) -> None:
    items = [
        {"ts": "2023-01-31T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": 7, "operator": "cucc"},
        {"ts": "2022-12-31T00:00:00+08:00", "region": "360000", "metric": "population", "value": 45279800},
    ]
    r = api.client.post("/v1/observations", json={"observations": items}, headers=api.headers("admin"))
    assert r.json()["accepted"] == 2, r.text
    with psycopg.connect(api.db_url) as conn:
        rows = conn.execute("SELECT metric, operator FROM observation ORDER BY metric").fetchall()
    assert rows == [("bs5g_total", "cucc"), ("population", "admin")]


def test_more_items_than_the_limit_is_413_and_stores_nothing(api: Api) -> None:
    items = _batch(1) * 1001  # the fixture's limit is 1000 per request
    r = api.client.post("/v1/observations", json={"observations": items}, headers=api.headers("cmcc"))
    assert r.status_code == 413
    assert "at most 1000" in r.json()["error"]
    assert observation_count(api.db_url) == 0


def test_a_body_past_the_byte_limit_is_413(api: Api) -> None:
    blob = "x" * (1 << 20)  # the fixture's body cap is 1 MiB
    r = api.client.post(
        "/v1/observations",
        content=('{"observations": ["' + blob + '"]}').encode(),
        headers={**api.headers("cmcc"), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]


def test_a_body_that_is_not_json_is_422_with_what_to_fix(api: Api) -> None:
    r = api.client.post(
        "/v1/observations", content=b"{nope", headers={**api.headers("cmcc"), "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert "invalid request" in r.json()["error"]
