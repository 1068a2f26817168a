"""Alerts listed a page at a time, by state, rule and operator, with their notification groups: GET /v1/alerts
and the console's alerts page, on alerts raised by the real engine from silent feeds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.engine import evaluate
from alerts.store import sync_rules_file
from ingest.pipeline import IngestPipeline
from tests.api_support import Api, api_fixture  # noqa: F401  (the `api` fixture)

OPERATORS = ("cbn", "cmcc", "ctcc", "cucc")
METRICS = (
    "bs5g_total",
    "users_5g",
    "gigabit_users",
    "iot_terminals_mobile",
    "traffic_mobile_gb",
    "traffic_fixed_gb",
    "bs5g_energy_kwh",
)


def twenty_eight_silent_feeds(conn: psycopg.Connection) -> None:
    """Every operator reported each of seven metrics for two cities 100 days ago, then nothing: 28 feeds
    silent, each one alert of the shipped stale rule (alerts/rules.yaml), grouped by operator."""
    ts = (datetime.now(UTC) - timedelta(days=100)).replace(microsecond=0).isoformat()
    for op in OPERATORS:
        items = [{"ts": ts, "region": str(r), "metric": m, "value": 5} for m in METRICS for r in (360100, 360200)]
        assert IngestPipeline().submit_items(conn, items, source="test", operator=op).rejected == 0
    sync_rules_file(conn)
    evaluate(conn, datetime.now(UTC))


def test_the_api_pages_through_alerts_and_filters_by_rule_and_operator(api: Api, conn: psycopg.Connection) -> None:
    twenty_eight_silent_feeds(conn)
    h = api.headers("viewer")
    whole = api.client.get("/v1/alerts", params={"limit": 1000}, headers=h).json()
    assert whole["total"] == len(whole["alerts"]) == 28
    first = api.client.get("/v1/alerts", params={"limit": 10}, headers=h).json()
    second = api.client.get("/v1/alerts", params={"limit": 10, "offset": 10}, headers=h).json()
    assert (len(first["alerts"]), len(second["alerts"]), first["total"]) == (10, 10, 28)
    assert {a["id"] for a in first["alerts"]}.isdisjoint(a["id"] for a in second["alerts"])
    # the groups cover every matching alert, not only the page's: one per rule and operator, seven feeds each
    assert len(first["groups"]) == 4 and [g["firing"] for g in first["groups"]] == [7, 7, 7, 7]
    assert {g["group_key"] for g in first["groups"]} == {f"operator={op}" for op in OPERATORS}
    by_rule = api.client.get("/v1/alerts", params={"rule": "stale-feeds"}, headers=h).json()
    assert by_rule["total"] == 28 and {a["rule_id"] for a in by_rule["alerts"]} == {"stale-feeds"}
    assert api.client.get("/v1/alerts", params={"rule": "quality-rejected-share-5pct"}, headers=h).json()["total"] == 0
    by_op = api.client.get("/v1/alerts", params={"operator": "cucc", "state": "all"}, headers=h).json()
    assert by_op["total"] == 7 and {a["scope"]["operator"] for a in by_op["alerts"]} == {"cucc"}
    assert api.client.get("/v1/alerts", params={"state": "resolved"}, headers=h).json()["total"] == 0
    # an operator key reads its own operator's only, and cannot ask for another's
    own = api.client.get("/v1/alerts", headers=api.headers("cmcc")).json()
    assert own["total"] == 7 and {a["scope"]["operator"] for a in own["alerts"]} == {"cmcc"}
    other = api.client.get("/v1/alerts", params={"operator": "ctcc"}, headers=api.headers("cmcc"))
    assert other.status_code == 403
    assert api.client.get("/v1/alerts", params={"limit": 0}, headers=h).status_code == 422


def test_the_console_alerts_page_shows_groups_and_one_page_of_alerts(api: Api, conn: psycopg.Connection) -> None:
    twenty_eight_silent_feeds(conn)
    r = api.client.post("/signin", data={"key": api.keys["viewer"]}, follow_redirects=False)
    assert r.status_code == 303
    html = api.client.get("/alerts").text
    # the 4 groups (one per operator), then the first page of 25 alerts of 28, and a link to the next
    assert len(re.findall(r'data-group="', html)) == 4
    assert len(re.findall(r'data-alert="\d+"', html)) == 25
    assert "page 1 of 2" in html and 'rel="next" href="/alerts?state=firing&amp;page=2"' in html
    second = api.client.get("/alerts", params={"page": 2}).text
    assert len(re.findall(r'data-alert="\d+"', second)) == 3
    page = api.client.get("/alerts", params={"rule": "quality-rejected-share-5pct"}).text
    assert len(re.findall(r'data-alert="\d+"', page)) == 0 and "Nothing is firing" in page
    cucc = api.client.get("/alerts", params={"operator": "cucc", "state": "all"}).text
    assert len(re.findall(r'data-alert="\d+"', cucc)) == 7 and len(re.findall(r'data-group="', cucc)) == 1
    assert api.client.get("/alerts", params={"state": "open"}).status_code == 422
