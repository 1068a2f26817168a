"""Read endpoints answer from the metrics layer, scoped by the key: series, targets, progress, freshness."""

from __future__ import annotations

import psycopg

from metrics import load_targets
from tests.api_support import Api, api_fixture  # noqa: F401  (the `api` fixture)


def _push(api: Api, who: str, value: int, region: str = "360100") -> None:
    item = {"ts": "2023-03-31T00:00:00+08:00", "region": region, "metric": "bs5g_total", "value": value}
    assert (
        api.client.post("/v1/observations", json={"observations": [item]}, headers=api.headers(who)).status_code == 200
    )


def _march(api: Api, who: str, **params: str) -> float | None:
    r = api.client.get(
        "/v1/series",
        params={"indicator": "bs5g_total", "interval": "1mo", "start": "2023-03-01", "end": "2023-04-01", **params},
        headers=api.headers(who),
    )
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert len(points) == 1 and points[0]["ts"].startswith("2023-03-01T00:00:00+08:00")
    return points[0]["value"]


def test_an_operator_key_reads_only_its_own_operator_in_series(api: Api) -> None:
    _push(api, "cmcc", 100)
    _push(api, "ctcc", 50, region="360200")
    assert _march(api, "cmcc") == 100  # its own only, although the province holds 150
    assert _march(api, "viewer") == 150  # 100 (cmcc, Nanchang) + 50 (ctcc, Jingdezhen)
    assert _march(api, "viewer", operator="ctcc") == 50
    assert _march(api, "admin", region="360200") == 50


def test_series_parameters_are_checked_with_what_to_fix(api: Api) -> None:
    h = api.headers("viewer")
    unknown = api.client.get("/v1/series", params={"indicator": "nope"}, headers=h)
    assert unknown.status_code == 422 and "/v1/indicators" in unknown.json()["error"]
    region = api.client.get("/v1/series", params={"indicator": "bs5g_total", "region": 360199}, headers=h)
    assert region.status_code == 422 and "nearest valid level is 360100" in region.json()["error"]
    huge = api.client.get(
        "/v1/series",
        params={"indicator": "bs5g_total", "interval": "1h", "start": "2000-01-01", "end": "2023-01-01"},
        headers=h,
    )
    assert huge.status_code == 422 and "coarser interval" in huge.json()["error"]
    backwards = api.client.get(
        "/v1/series", params={"indicator": "bs5g_total", "start": "2023-02-01", "end": "2023-01-01"}, headers=h
    )
    assert backwards.status_code == 422 and "before end" in backwards.json()["error"]


def test_an_admin_adds_changes_and_retires_a_target(api: Api) -> None:
    h = api.headers("admin")
    target = {
        "id": "test-gz-5g",
        "title": "Ganzhou 5G base stations",
        "source": "test",
        "indicator": "bs5g_total",
        "region": 360700,
        "comparator": ">=",
        "goal": 20000,
        "start": "2022-01-01",
        "deadline": "2025-12-31",
    }
    assert api.client.put("/v1/targets/test-gz-5g", json=target, headers=h).status_code == 201
    assert api.client.put("/v1/targets/test-gz-5g", json={**target, "goal": 21000}, headers=h).status_code == 200
    got = api.client.get("/v1/targets/test-gz-5g", headers=api.headers("viewer")).json()
    assert got["target"]["goal"] == 21000
    assert got["progress"]["status"] == "no_data"  # nothing pushed for Ganzhou
    mismatch = api.client.put("/v1/targets/other-id", json=target, headers=h)
    assert mismatch.status_code == 422 and "differs" in mismatch.json()["error"]
    invalid = api.client.put("/v1/targets/test-gz-5g", json={**target, "indicator": "nope"}, headers=h)
    assert invalid.status_code == 422
    assert api.client.delete("/v1/targets/test-gz-5g", headers=h).status_code == 204
    active = [t["target"]["id"] for t in api.client.get("/v1/targets", headers=h).json()["targets"]]
    assert "test-gz-5g" not in active
    retired = api.client.get("/v1/targets", params={"include_retired": True}, headers=h).json()["targets"]
    assert [t["progress"] for t in retired if t["target"]["id"] == "test-gz-5g"] == [None]
    assert api.client.delete("/v1/targets/never-was", headers=h).status_code == 404


def test_progress_lists_every_active_target(api: Api) -> None:
    with psycopg.connect(api.db_url) as conn:
        loaded = load_targets(conn)
    body = api.client.get("/v1/progress", headers=api.headers("viewer")).json()
    assert len(body["progress"]) == loaded
    assert {p["status"] for p in body["progress"]} <= {
        "achieved",
        "missed",
        "on_track",
        "at_risk",
        "off_track",
        "no_data",
    }


def test_freshness_shows_each_operator_feed_with_its_age(api: Api) -> None:
    _push(api, "cmcc", 100)
    feeds = api.client.get("/v1/freshness", headers=api.headers("viewer")).json()["feeds"]
    assert [(f["operator"], f["metric"], f["region"]) for f in feeds] == [("cmcc", "bs5g_total", 360100)]
    assert feeds[0]["last_ts"].startswith("2023-03-3") and feeds[0]["stale"] is True  # a 2023 figure is old
