"""The boards and provisioning files are what Grafana accepts: the dashboard JSON model (schema from
grafana-foundation-sdk), consistent ids, grid and datasource references, the documented provisioning
fields, and the committed files equal to freshly generated ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard as SdkDashboard

from dashboards.boards import STATUS_COLORS, all_boards, indicator_options, pue_goal
from dashboards.grafana import DATASOURCE_TYPE, DATASOURCE_UID, GRID_COLUMNS
from dashboards.provisioning import PROVISIONING_DIR, DatasourceOptions, datasource_config, rendered_files
from reference.catalogue import INDICATORS
from reference.regions import NATION, PROVINCE, REGIONS, provinces, subtree
from tests.grafana_model import model_problems

#: Panel plugins built into Grafana that the boards may use.
CORE_PANELS = {
    "row",
    "timeseries",
    "table",
    "stat",
    "bargauge",
    "barchart",
    "gauge",
    "piechart",
    "text",
    "state-timeline",
}

#: Documented datasource provisioning fields (grafana.com/docs/grafana/latest/administration/provisioning/
#: #data-sources) and the PostgreSQL datasource's jsonData/secureJsonData (…/datasources/postgres/configure/).
DATASOURCE_FIELDS = {
    "name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth", "basicAuthUser",
    "withCredentials", "isDefault", "jsonData", "secureJsonData", "version", "editable",
}  # fmt: skip
POSTGRES_JSON_DATA = {
    "database", "sslmode", "sslRootCertFile", "sslCertFile", "sslKeyFile", "tlsAuth", "tlsAuthWithCACert",
    "tlsConfigurationMethod", "tlsSkipVerify", "maxOpenConns", "maxIdleConns", "maxIdleConnsAuto",
    "connMaxLifetime", "postgresVersion", "timescaledb", "timeInterval", "enableSecureSocksProxy",
}  # fmt: skip
POSTGRES_SECURE_JSON_DATA = {"password", "tlsCACert", "tlsClientCert", "tlsClientKey"}
SSL_MODES = {"disable", "require", "verify-ca", "verify-full"}
PROVIDER_FIELDS = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
    "allowUiUpdates", "options",
}  # fmt: skip
PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}

BOARDS = all_boards()


def _all_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


@pytest.mark.parametrize("stem", sorted(BOARDS))
def test_each_board_follows_grafanas_dashboard_model(stem: str) -> None:
    assert model_problems(BOARDS[stem]) == []


@pytest.mark.parametrize("stem", sorted(BOARDS))
def test_each_board_reads_back_through_the_sdks_dashboard_model_unchanged(stem: str) -> None:
    """grafana-foundation-sdk's typed model (Grafana's schema) keeps only the fields it knows: a board that
    survives the round trip uses no field, panel option or query shape outside the schema."""
    again = json.loads(json.dumps(SdkDashboard.from_json(BOARDS[stem]), cls=JSONEncoder))
    assert again == BOARDS[stem]
    assert again["schemaVersion"] >= 41  # Grafana 11.6's dashboard schema, which Grafana 12 reads


def test_the_model_check_catches_a_field_grafana_does_not_know() -> None:
    board = json.loads(json.dumps(BOARDS["plan-targets"]))
    board["panels"][1]["gridpos"] = board["panels"][1].pop("gridPos")  # a typo Grafana would ignore silently
    problems = model_problems(board)
    assert any("unknown field 'gridpos'" in p for p in problems) and any("missing gridPos" in p for p in problems)


@pytest.mark.parametrize("stem", sorted(BOARDS))
def test_panel_ids_are_unique_and_the_grid_holds_every_panel_without_overlap(stem: str) -> None:
    panels = _all_panels(BOARDS[stem])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    occupied: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= GRID_COLUMNS, (p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in occupied, f"{p['title']!r} overlaps {occupied[(x, y)]!r} at {(x, y)}"
                occupied[(x, y)] = p["title"]
        assert p["type"] in CORE_PANELS, p["type"]


@pytest.mark.parametrize("stem", sorted(BOARDS))
def test_every_query_and_variable_names_the_provisioned_datasource(stem: str) -> None:
    board = BOARDS[stem]
    provisioned = datasource_config()["datasources"][0]
    refs = []
    for p in _all_panels(board):
        if p["type"] == "row":
            continue
        assert p["targets"], f"{p['title']!r} has no query"
        refs.append(p["datasource"])
        for t in p["targets"]:
            refs.append(t["datasource"])
            assert t["rawQuery"] and t["rawSql"].strip() and t["format"] in ("table", "time_series")
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), f"{p['title']!r}: duplicate refIds"
    refs += [v["datasource"] for v in board["templating"]["list"] if v["type"] == "query"]
    assert refs
    for ref in refs:
        assert ref == {"type": provisioned["type"], "uid": provisioned["uid"]}
    assert (provisioned["type"], provisioned["uid"]) == (DATASOURCE_TYPE, DATASOURCE_UID)


def test_board_uids_are_unique_and_fit_grafanas_limit() -> None:
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert all(0 < len(u) <= 40 for u in uids)


def test_the_boards_follow_the_catalogue_the_regions_and_the_targets() -> None:
    explorer = {v["name"]: v for v in BOARDS["indicator-explorer"]["templating"]["list"]}
    assert [o["value"] for o in explorer["indicator"]["options"]] == [v for _, v in indicator_options()]
    assert {o["value"] for o in explorer["indicator"]["options"]} == set(INDICATORS)
    # the picker over the hierarchy: the nation, every province, the default province's cities and counties
    picked = {o["value"] for o in explorer["region"]["options"]}
    assert picked == {str(c) for c in (NATION, *provinces(), *subtree(PROVINCE))}
    assert picked <= {str(c) for c in REGIONS}
    dc = BOARDS["data-centres"]
    steps = [p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps") for p in dc["panels"]]
    assert {"color": "red", "value": pue_goal()} in [s for ss in steps if ss for s in ss]
    assert pue_goal() == 1.5  # domain.md: gz-2025-dc-pue, PUE < 1.5
    table = next(p for p in BOARDS["plan-targets"]["panels"] if p["title"] == "Active targets")
    mapping = table["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]["options"]
    assert set(mapping) == set(STATUS_COLORS) == {"achieved", "missed", "on_track", "at_risk", "off_track", "no_data"}


def test_the_region_view_matches_the_reference_regions(conn) -> None:
    rows = conn.execute("SELECT code, name_en, name_zh, parent FROM iw_region ORDER BY code").fetchall()
    assert rows == [(c, r.name_en, r.name_zh, r.parent) for c, r in sorted(REGIONS.items())]


# -- provisioning ----------------------------------------------------------------------------------------


def test_the_datasource_file_uses_only_documented_fields() -> None:
    config = yaml.safe_load((PROVISIONING_DIR / "datasources" / "infrawatch.yaml").read_text(encoding="utf-8"))
    assert set(config) == {"apiVersion", "datasources"} and config["apiVersion"] == 1
    (ds,) = config["datasources"]
    assert set(ds) <= DATASOURCE_FIELDS
    assert {"name", "type", "uid", "url", "user", "jsonData", "secureJsonData"} <= set(ds)
    assert ds["type"] == "grafana-postgresql-datasource" and ds["uid"] == DATASOURCE_UID and ds["access"] == "proxy"
    assert set(ds["jsonData"]) <= POSTGRES_JSON_DATA
    assert set(ds["secureJsonData"]) <= POSTGRES_SECURE_JSON_DATA
    # Credentials come from Grafana's environment, never from the committed file.
    for value in (ds["url"], ds["user"], ds["jsonData"]["database"], ds["secureJsonData"]["password"]):
        assert value.startswith("${INFRAWATCH_GRAFANA_DB_") and value.endswith("}")


def test_typed_datasource_fields_are_yaml_literals_not_environment_strings() -> None:
    """Grafana interpolates environment variables into strings only; its PostgreSQL plugin decodes
    `timescaledb` as a bool and `postgresVersion` as an integer, so "${VAR}" there breaks the datasource."""
    ds = datasource_config(DatasourceOptions(timescaledb=False, postgres_version=1500))["datasources"][0]
    assert ds["jsonData"]["timescaledb"] is False and ds["jsonData"]["postgresVersion"] == 1500
    shipped = yaml.safe_load((PROVISIONING_DIR / "datasources" / "infrawatch.yaml").read_text(encoding="utf-8"))
    json_data = shipped["datasources"][0]["jsonData"]
    assert isinstance(json_data["timescaledb"], bool) and isinstance(json_data["postgresVersion"], int)
    assert isinstance(json_data["maxOpenConns"], int) and isinstance(json_data["maxIdleConnsAuto"], bool)


def test_the_dashboard_provider_uses_only_documented_fields() -> None:
    config = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "infrawatch.yaml").read_text(encoding="utf-8"))
    assert set(config) == {"apiVersion", "providers"} and config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert set(provider) <= PROVIDER_FIELDS and provider["type"] == "file"
    assert set(provider["options"]) <= PROVIDER_OPTIONS
    # The provider reads the JSON files mounted beside it (docker-compose mounts provisioning/ there).
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards"


def test_the_committed_provisioning_files_equal_freshly_generated_ones() -> None:
    fresh = rendered_files()
    committed = {
        str(p.relative_to(PROVISIONING_DIR)): p.read_text(encoding="utf-8")
        for p in PROVISIONING_DIR.rglob("*")
        if p.is_file()
    }
    assert set(committed) == set(fresh), "run `infrawatch dashboards export dashboards/provisioning`"
    stale = [rel for rel in fresh if committed[rel] != fresh[rel]]
    assert not stale, f"regenerate with `infrawatch dashboards export dashboards/provisioning`: {stale}"
