"""Official statistics through the API: `all` figures only with admin keys, province totals, reconciliation."""

from __future__ import annotations

import psycopg
import pytest

from api.keys import KeyError_, create_key
from core.settings import get_settings
from tests.api_support import Api, api_fixture  # noqa: F401  (the `api` fixture)

TS = "2023-06-30T00:00:00+08:00"


def _item(region: str, value: int, **kw: object) -> dict[str, object]:
    return {"ts": TS, "region": region, "metric": "bs5g_total", "value": value, **kw}


def test_an_operator_key_writing_all_is_rejected_and_an_admin_key_may(api: Api) -> None:
    body = {"observations": [_item("360000", 1000, operator="all"), _item("360000", 400)]}
    r = api.client.post("/v1/observations", json=body, headers=api.headers("cmcc"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 1  # cmcc's own province total is taken (an operator may report any region)
    assert [x["index"] for x in out["rejected"]] == [0] and "does not match" in out["rejected"][0]["error"]
    r = api.client.post(
        "/v1/observations", json={"observations": [body["observations"][0]]}, headers=api.headers("admin")
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


def test_no_operator_key_can_be_bound_to_all_or_admin(api: Api) -> None:
    with psycopg.connect(api.db_url) as conn:
        for op in ("all", "admin"):
            with pytest.raises(KeyError_, match="admin key"):
                create_key(conn, role="operator", operator=op, name="x", secret=get_settings().secret_key)
        # a key bound to `all` from before this rule still cannot write: 403
        conn.execute("ALTER TABLE api_key DISABLE TRIGGER ALL")
        key, rec = create_key(conn, role="operator", operator="cmcc", name="old", secret=get_settings().secret_key)
        conn.execute("UPDATE api_key SET operator = 'all' WHERE id = %s", (rec.id,))
        conn.commit()
    r = api.client.post(
        "/v1/observations", json={"observations": [_item("360000", 5)]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 403, r.text


def test_reconciliation_shows_the_province_total_beside_its_cities(api: Api) -> None:
    obs = [
        _item("360000", 1000, operator="all"),
        _item("360100", 600, operator="cmcc"),
        _item("360700", 300, operator="cmcc"),
    ]
    assert (
        api.client.post("/v1/observations", json={"observations": obs}, headers=api.headers("admin")).status_code == 200
    )
    r = api.client.get(
        "/v1/reconciliation",
        params={"indicator": "bs5g_total", "region": 360000, "period": "2023-06"},
        headers=api.headers("viewer"),
    )
    assert r.status_code == 200, r.text
    gaps = r.json()["gaps"]
    assert {g["axis"] for g in gaps} == {"regions", "operators"}  # cities' sum, and cmcc's (its cities) alike
    gap = next(g for g in gaps if g["axis"] == "regions")
    assert (gap["region"], gap["axis"], gap["reported"], gap["derived"], gap["gap"]) == (
        360000,
        "regions",
        1000,
        900,
        100,
    )
    assert (gap["parts_reporting"], gap["parts_total"]) == (2, 11)
    bad = api.client.get(
        "/v1/reconciliation", params={"indicator": "bs5g_total", "region": 360199}, headers=api.headers("viewer")
    )
    assert bad.status_code == 422 and "360100" in bad.text
    assert (
        api.client.get(
            "/v1/reconciliation", params={"indicator": "bs5g_total"}, headers=api.headers("cmcc")
        ).status_code
        == 403
    )


def test_the_console_shows_the_reconciliation_gaps(api: Api) -> None:
    from tests.test_console_pages import sign_in

    obs = [_item("360000", 1000, operator="all"), _item("360100", 600, operator="cmcc")]
    assert (
        api.client.post("/v1/observations", json={"observations": obs}, headers=api.headers("admin")).status_code == 200
    )
    sign_in(api, "viewer")
    html = api.client.get("/reconciliation", params={"indicator": "bs5g_total", "period": "2023-06"}).text
    assert 'data-gap="360000/all/regions"' in html and "1 of 11" in html
    assert ">400 <small>(40.0 %)" in html  # the gap: 1,000 reported, 600 from the one city
