"""The national region list: levels and parents by code structure, and loading a newer list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from core.settings import get_settings
from metrics.regionlist import update_regions
from reference.regions import (
    CITIES,
    NATION,
    REGIONS,
    RegionListError,
    ancestors,
    children,
    parse_region_list,
    provinces,
    region_list_file,
    region_list_info,
)


def test_the_shipped_list_is_the_whole_country_with_its_year_and_source() -> None:
    info = region_list_info()
    assert info["year"] == 2019 and "mca.gov.cn" in str(info["source_url"])
    assert len(provinces()) == 34  # 31 provinces, Taiwan, Hong Kong, Macao
    assert len(REGIONS) > 3000
    assert REGIONS[NATION].level == "nation" and REGIONS[360000].parent == NATION
    assert tuple(range(360100, 361200, 100)) == CITIES  # Jiangxi's eleven cities
    assert ancestors(360111) == (360100, 360000, NATION)
    assert REGIONS[419001].parent == 410000  # 济源市: a county-level city directly under Henan
    assert REGIONS[110101].parent == 110000  # Beijing's districts: no prefecture level between
    assert 360111 in children(360100)


def test_a_list_without_the_parent_of_a_code_is_refused() -> None:
    with pytest.raises(RegionListError, match="no parent 370000"):
        parse_region_list([{"code": "370100", "name": "济南市"}])
    with pytest.raises(RegionListError, match="line 2"):
        parse_region_list([{"code": "37010", "name": "x"}])


def test_regions_update_loads_a_newer_list(conn: psycopg.Connection, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INFRAWATCH_REGIONS_FILE", str(tmp_path / "regions.csv"))
    get_settings.cache_clear()  # db_url's fixture cleared it before this variable was set
    assert region_list_file() == tmp_path / "regions.csv"
    newer = tmp_path / "mca-2023.csv"
    newer.write_text("code,name\n360000,江西省\n360100,南昌市\n360113,红谷滩区\n", encoding="utf-8")
    regions = update_regions(conn, newer, list_name="2023-12", source_note="test")
    assert regions[360113].parent == 360100
    rows = conn.execute("SELECT code, parent, level FROM iw_region ORDER BY code").fetchall()
    assert rows == [
        (NATION, None, "nation"),
        (360000, NATION, "province"),
        (360100, 360000, "city"),
        (360113, 360100, "county"),
    ]
    assert (tmp_path / "regions.meta.yaml").read_text(encoding="utf-8").count("2023-12") == 1


def test_the_list_in_force_is_the_setting_read_on_first_use_not_at_import(tmp_path: Path) -> None:
    """INFRAWATCH_REGIONS_FILE is a field of the one settings class, read when the regions are first needed:
    importing every layer reads no list, and the first use reads the configured one."""
    listed = tmp_path / "regions.csv"
    listed.write_text("code,name\n360000,江西省\n360100,南昌市\n360113,红谷滩区\n", encoding="utf-8")
    script = (
        "import api.app, bulletins, dashboards.boards, infrawatch.cli, ingest.validate, metrics, simulators.run\n"
        "from reference.regions import CITIES, REGIONS\n"
        "assert not REGIONS.loaded, 'read at import'\n"
        "print(len(REGIONS), tuple(CITIES), REGIONS[360113].parent)\n"
    )
    env = {**os.environ, "INFRAWATCH_REGIONS_FILE": str(listed)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "(360100,)", "360100"]  # the nation, the province, a city, a district
