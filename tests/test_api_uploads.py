"""POST /v1/uploads and GET /v1/uploads/{id}: CSV files streamed to disk and loaded with the key's operator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Limits
from core.settings import get_settings
from tests.api_support import Api, api_fixture, make_keys, observation_count  # noqa: F401  (the `api` fixture)

# Wide monthly sheet as statistics departments export it; 城市 is an ignored label column.
# Line 4 has a negative count → rejected; the others are stored (3 rows × 2 metrics − 1 = 5 observations).
WIDE = (
    "ts,region,城市,bs5g_total,gigabit_users\n"
    "2023-01,360100,南昌,1200,50000\n"
    "2023-01,360200,景德镇,300,8000\n"
    "2023-01,360300,萍乡,-5,9000\n"
)


def _upload(web: Api, who: str, data: bytes, name: str = "sheet.csv", **fields: str):  # type: ignore[no-untyped-def]
    return web.client.post(
        "/v1/uploads", files={"file": (name, data, "text/csv")}, data=fields, headers=web.headers(who)
    )


def _observations(db_url: str, operator: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT metric, region, entity, ts, value FROM observation WHERE operator = %s ORDER BY 1, 2, 3, 4",
            (operator,),
        ).fetchall()


def test_a_gb18030_upload_equals_its_utf8_twin(api: Api) -> None:
    gb = _upload(api, "cmcc", WIDE.encode("gb18030"), "表.csv")
    utf = _upload(api, "ctcc", WIDE.encode("utf-8"), "sheet.csv")
    assert gb.status_code == utf.status_code == 201, gb.text
    g, u = gb.json(), utf.json()
    assert g["encoding"] == "gb18030" and u["encoding"] in ("utf-8", "utf-8-sig")
    for field in ("rows", "accepted", "duplicates", "revised", "rejected", "errors", "format", "ignored_columns"):
        assert g[field] == u[field], field
    assert (g["rows"], g["accepted"], g["rejected"]) == (3, 5, 1)
    assert g["errors"][0]["line"] == 4 and g["errors"][0]["column"] == "bs5g_total"
    assert _observations(api.db_url, "cmcc") == _observations(api.db_url, "ctcc")
    assert len(_observations(api.db_url, "cmcc")) == 5


def test_uploading_the_same_file_twice_changes_nothing(api: Api) -> None:
    first = _upload(api, "cmcc", WIDE.encode()).json()
    again = _upload(api, "cmcc", WIDE.encode()).json()
    assert (again["accepted"], again["duplicates"], again["revised"]) == (0, 5, 0)
    assert again["same_as"] == first["id"]
    assert observation_count(api.db_url) == 5


def test_a_row_naming_another_operator_is_rejected_for_an_operator_key(api: Api) -> None:
    csv = (
        "ts,region,metric,value,operator\n2023-01-31,360100,bs5g_total,10,cmcc\n2023-01-31,360200,bs5g_total,20,ctcc\n"
    )
    body = _upload(api, "cmcc", csv.encode()).json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["errors"][0]["line"] == 3 and body["errors"][0]["column"] == "operator"


def test_an_admin_upload_trusts_the_operator_column(api: Api) -> None:
    csv = (
        "ts,region,metric,value,operator\n2023-01-31,360100,bs5g_total,10,cmcc\n2023-01-31,360200,bs5g_total,20,ctcc\n"
    )
    body = _upload(api, "admin", csv.encode()).json()
    assert (body["accepted"], body["rejected"]) == (2, 0)


def test_the_report_is_read_again_by_its_owner_and_hidden_from_other_operators(api: Api) -> None:
    report = _upload(api, "ctcc", WIDE.encode()).json()
    url = f"/v1/uploads/{report['id']}"
    assert api.client.get(url, headers=api.headers("ctcc")).json() == report
    assert api.client.get(url, headers=api.headers("viewer")).status_code == 200
    assert api.client.get(url, headers=api.headers("cmcc")).status_code == 404
    assert (
        api.client.get("/v1/uploads/00000000-0000-0000-0000-000000000000", headers=api.headers("admin")).status_code
        == 404
    )


def test_an_unusable_file_is_422_with_the_reason(api: Api) -> None:
    r = _upload(api, "cmcc", b"name,colour\nfoo,red\n")
    assert r.status_code == 422
    assert "ts" in r.json()["error"] and "region" in r.json()["error"]


def test_a_renamed_picture_is_422_naming_the_users_file_not_a_temporary_one(api: Api) -> None:
    png = (Path(__file__).parents[1] / "api" / "docs_assets" / "favicon-32x32.png").read_bytes()  # a real PNG
    r = _upload(api, "cmcc", png, name="figures-2023-06.csv")
    assert r.status_code == 422
    error = r.json()["error"]
    assert "figures-2023-06.csv is not text" in error and "upload-" not in error, error


def test_an_unknown_time_zone_is_422(api: Api) -> None:
    r = _upload(api, "cmcc", WIDE.encode(), timezone="Mars/Olympus")
    assert r.status_code == 422
    assert "time zone" in r.json()["error"]


def test_a_request_without_a_file_field_is_422(api: Api) -> None:
    r = api.client.post(
        "/v1/uploads", data={"timezone": "UTC"}, files={"other": ("x", b"y")}, headers=api.headers("cmcc")
    )
    assert r.status_code == 422
    assert "`file`" in r.json()["error"]


@pytest.fixture
def small_cap_client(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    monkeypatch.setenv("INFRAWATCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    keys = make_keys(db_url)
    app = create_app(get_settings(), limits=Limits(max_upload_bytes=64 * 1024))
    with TestClient(app) as client:
        yield client, keys["cmcc"]


def test_a_file_past_the_size_cap_is_413_and_leaves_no_temporary_file(
    small_cap_client: tuple[TestClient, str], tmp_path: Path, db_url: str
) -> None:
    client, key = small_cap_client
    big = WIDE.encode() + b"2023-02,360100,x,1,1\n" * 5000  # ~100 KB > the 64 KB cap

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length, so the cap must hold while streaming
        boundary = b"BOUNDARY"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]
        yield b"\r\n--" + boundary + b"--\r\n"

    r = client.post(
        "/v1/uploads",
        content=chunks(),
        headers={"Authorization": f"Bearer {key}", "content-type": "multipart/form-data; boundary=BOUNDARY"},
    )
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
    assert observation_count(db_url) == 0
