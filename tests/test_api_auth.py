"""Authorisation: every endpoint × every role (no key, operator cmcc, operator ctcc, viewer, admin)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from api.keys import revoke_key
from metrics import load_targets
from tests.api_support import ROLES, Api, api_fixture  # noqa: F401  (the `api` fixture)

TARGET = "jx-2023-5g-new"
ITEM = {"ts": "2023-03-31T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": 10}
CSV = b"ts,region,metric,value\n2023-01-31,360200,bs5g_total,5\n"
RULE = {"id": "hot-dc", "kind": "threshold", "title": "hot", "indicator": "dc_pue", "comparator": ">", "value": 1.5}


@dataclass
class Cell:
    """One endpoint: how to call it, the status each role gets, and optional checks on 2xx bodies."""

    method: str
    route: str  # the OpenAPI path template it exercises
    call: Callable[[Api, dict[str, str], dict[str, Any]], httpx.Response]
    expect: tuple[int, int, int, int, int]  # none, cmcc, ctcc, viewer, admin
    check: dict[str, Callable[[Any], bool]] = field(default_factory=dict)


def _setup(api: Api) -> dict[str, Any]:
    with psycopg.connect(api.db_url) as conn:
        load_targets(conn)
        alert_ids = [
            conn.execute(
                "INSERT INTO alert (rule_id, kind, scope_key, scope, state, severity, summary, started_at, fired_at,"
                " last_seen_at) VALUES (%s, 'stale', %s, %s, 'firing', 'warning', 'silent feed', now(), now(), now())"
                " RETURNING id",
                ("stale-feeds", f"operator={op}", psycopg.types.json.Jsonb({"operator": op})),
            ).fetchone()[0]  # type: ignore[index]
            for op in ("cmcc", "ctcc")
        ]
        conn.commit()
    for who in ("cmcc", "ctcc"):  # each operator has one feed
        item = {**ITEM, "region": "360100" if who == "cmcc" else "360200"}
        r = api.client.post("/v1/observations", json={"observations": [item]}, headers=api.headers(who))
        assert r.status_code == 200 and r.json()["accepted"] == 1
    upload = api.client.post("/v1/uploads", files={"file": ("b.csv", CSV)}, headers=api.headers("ctcc"))
    assert upload.status_code == 201
    target = api.client.get(f"/v1/targets/{TARGET}", headers=api.headers("admin")).json()["target"]
    assert api.client.put(f"/v1/alert-rules/{RULE['id']}", json=RULE, headers=api.headers("admin")).status_code == 201
    return {"upload": upload.json()["id"], "alert": alert_ids[1], "target": target}


def _feeds_of(body: Any) -> set[str]:
    return {f["operator"] for f in body["feeds"]}


CELLS = [
    Cell("GET", "/healthz", lambda a, h, c: a.client.get("/healthz", headers=h), (200, 200, 200, 200, 200)),
    Cell("GET", "/metrics", lambda a, h, c: a.client.get("/metrics", headers=h), (200, 200, 200, 200, 200)),
    Cell("GET", "/v1/indicators", lambda a, h, c: a.client.get("/v1/indicators", headers=h), (401, 200, 200, 200, 200)),
    Cell(
        "POST",
        "/v1/observations",
        lambda a, h, c: a.client.post("/v1/observations", json={"observations": [ITEM]}, headers=h),
        (401, 200, 200, 403, 200),
    ),
    Cell(  # an item naming another operator: the request is answered, that item is rejected
        "POST",
        "/v1/observations",
        lambda a, h, c: a.client.post(
            "/v1/observations", json={"observations": [{**ITEM, "operator": "ctcc"}]}, headers=h
        ),
        (401, 200, 200, 403, 200),
        check={
            "cmcc": lambda b: [r["index"] for r in b["rejected"]] == [0] and "operator" in b["rejected"][0]["error"],
            "ctcc": lambda b: b["rejected"] == [],
            "admin": lambda b: b["rejected"] == [],
        },
    ),
    Cell(
        "POST",
        "/v1/uploads",
        lambda a, h, c: a.client.post("/v1/uploads", files={"file": ("a.csv", CSV)}, headers=h),
        (401, 201, 201, 403, 201),
    ),
    Cell(  # ctcc's upload report: cmcc cannot see it
        "GET",
        "/v1/uploads/{upload_id}",
        lambda a, h, c: a.client.get(f"/v1/uploads/{c['upload']}", headers=h),
        (401, 404, 200, 200, 200),
    ),
    Cell(
        "GET",
        "/v1/series",
        lambda a, h, c: a.client.get("/v1/series", params={"indicator": "bs5g_total"}, headers=h),
        (401, 200, 200, 200, 200),
        check={"cmcc": lambda b: b["operator"] == "cmcc", "viewer": lambda b: b["operator"] is None},
    ),
    Cell(
        "GET",
        "/v1/series",
        lambda a, h, c: a.client.get("/v1/series", params={"indicator": "bs5g_total", "operator": "ctcc"}, headers=h),
        (401, 403, 200, 200, 200),
    ),
    Cell("GET", "/v1/targets", lambda a, h, c: a.client.get("/v1/targets", headers=h), (401, 403, 403, 200, 200)),
    Cell(
        "GET",
        "/v1/targets/{target_id}",
        lambda a, h, c: a.client.get(f"/v1/targets/{TARGET}", headers=h),
        (401, 403, 403, 200, 200),
    ),
    Cell(
        "PUT",
        "/v1/targets/{target_id}",
        lambda a, h, c: a.client.put(f"/v1/targets/{TARGET}", json=c["target"], headers=h),
        (401, 403, 403, 403, 200),
    ),
    Cell("GET", "/v1/progress", lambda a, h, c: a.client.get("/v1/progress", headers=h), (401, 403, 403, 200, 200)),
    Cell(
        "GET",
        "/v1/reconciliation",
        lambda a, h, c: a.client.get("/v1/reconciliation", params={"indicator": "bs5g_total"}, headers=h),
        (401, 403, 403, 200, 200),
    ),
    Cell("GET", "/v1/bulletins", lambda a, h, c: a.client.get("/v1/bulletins", headers=h), (401, 403, 403, 200, 200)),
    Cell(
        "GET",
        "/v1/bulletins/{bulletin_id}/{file}",
        lambda a, h, c: a.client.get("/v1/bulletins/999999/bulletin.pdf", headers=h),
        (401, 403, 403, 404, 404),
    ),
    Cell(
        "GET",
        "/v1/freshness",
        lambda a, h, c: a.client.get("/v1/freshness", headers=h),
        (401, 200, 200, 200, 200),
        check={"cmcc": lambda b: _feeds_of(b) == {"cmcc"}, "viewer": lambda b: _feeds_of(b) == {"cmcc", "ctcc"}},
    ),
    Cell(
        "GET",
        "/v1/freshness",
        lambda a, h, c: a.client.get("/v1/freshness", params={"operator": "ctcc"}, headers=h),
        (401, 403, 200, 200, 200),
    ),
    Cell(
        "GET",
        "/v1/alerts",
        lambda a, h, c: a.client.get("/v1/alerts", params={"state": "all"}, headers=h),
        (401, 200, 200, 200, 200),
        check={
            "cmcc": lambda b: [x["scope"]["operator"] for x in b["alerts"]] == ["cmcc"],
            "viewer": lambda b: len(b["alerts"]) == 2,
        },
    ),
    Cell(
        "POST",
        "/v1/alerts/{alert_id}/ack",
        lambda a, h, c: a.client.post(f"/v1/alerts/{c['alert']}/ack", headers=h),
        (401, 403, 403, 403, 200),
        check={"admin": lambda b: b["acknowledged_by"] == "test admin"},
    ),
    Cell(
        "GET",
        "/v1/alert-rules",
        lambda a, h, c: a.client.get("/v1/alert-rules", headers=h),
        (401, 403, 403, 200, 200),
        check={"viewer": lambda b: any(r["id"] == RULE["id"] for r in b["rules"])},
    ),
    Cell(
        "PUT",
        "/v1/alert-rules/{rule_id}",
        lambda a, h, c: a.client.put(f"/v1/alert-rules/{RULE['id']}", json={**RULE, "title": "changed"}, headers=h),
        (401, 403, 403, 403, 200),
        check={"admin": lambda b: b["title"] == "changed"},
    ),
    Cell(
        "DELETE",
        "/v1/alert-rules/{rule_id}",
        lambda a, h, c: a.client.delete(f"/v1/alert-rules/{RULE['id']}", headers=h),
        (401, 403, 403, 403, 204),
    ),
    Cell(  # last: retires the target the rows above read
        "DELETE",
        "/v1/targets/{target_id}",
        lambda a, h, c: a.client.delete(f"/v1/targets/{TARGET}", headers=h),
        (401, 403, 403, 403, 204),
    ),
]


def test_every_endpoint_answers_each_role_as_interface_section_7_says(api: Api) -> None:
    ctx = _setup(api)
    wrong: list[str] = []
    for cell in CELLS:
        for who, expected in zip(ROLES, cell.expect, strict=True):
            r = cell.call(api, api.headers(who), ctx)
            if r.status_code != expected:
                wrong.append(f"{cell.method} {cell.route} as {who}: {r.status_code} (want {expected}) {r.text[:200]}")
            elif r.status_code >= 400:
                if "error" not in r.json():
                    wrong.append(f"{cell.method} {cell.route} as {who}: error body without 'error'")
            elif who in cell.check and not cell.check[who](r.json()):
                wrong.append(f"{cell.method} {cell.route} as {who}: body check failed: {r.text[:300]}")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_every_operation_in_the_openapi_schema(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    covered = {(c.method, c.route) for c in CELLS} | {("GET", "/readyz")}  # readyz: see test_api_health
    assert documented - covered == set()


def test_missing_or_unknown_keys_get_401_with_what_to_do(api: Api) -> None:
    for authorization in ("", "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer iw_00000000_notakeyatall"):
        r = api.client.get("/v1/indicators", headers={"Authorization": authorization} if authorization else {})
        assert r.status_code == 401, authorization
        assert "key" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_gets_401(api: Api) -> None:
    assert api.client.get("/v1/indicators", headers=api.headers("viewer")).status_code == 200
    with psycopg.connect(api.db_url) as conn:
        key_id = conn.execute("SELECT id FROM api_key WHERE role = 'viewer'").fetchone()[0]  # type: ignore[index]
        assert revoke_key(conn, key_id)
    assert api.client.get("/v1/indicators", headers=api.headers("viewer")).status_code == 401


def test_a_tampered_key_with_a_real_prefix_gets_401(api: Api) -> None:
    key = api.keys["admin"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert api.client.get("/v1/indicators", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401


def test_keys_are_stored_only_as_hashes(api: Api) -> None:
    with psycopg.connect(api.db_url) as conn:
        stored = {row[0] for row in conn.execute("SELECT hash FROM api_key")}
    assert not any(key in h or h in key for key in api.keys.values() for h in stored)
    assert all(len(h) == 64 for h in stored)  # hex HMAC-SHA256
