"""The plans' targets on figures in the form official releases give them, through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from metrics import DEFAULT_TARGETS_FILE, indicator_value, parse_as_of
from metrics.targets import read_targets_file
from reference.regions import DATA_DIR

SEEDS = ("2022年工作计划", "赣数办〔2023〕1号", "赣市发〔2022〕5号")


def run(*args: str):
    from infrawatch.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_every_seed_target_names_its_document_and_clause_and_the_list_shows_them() -> None:
    targets = read_targets_file(DEFAULT_TARGETS_FILE)
    assert len(targets) >= 29
    for t in targets:
        assert any(doc in t.source for doc in SEEDS) and "," in t.source, t.id
    by_id = {t.id: t for t in targets}
    assert by_id["jx-2022-nanchang-ix"].entity == "nanchang-ix-operational"
    assert by_id["jx-2022-agri-iot-bases"].indicator == "programme_count"
    assert by_id["gz-2025-village-5g"].interpretation and "基本覆盖" in by_id["gz-2025-village-5g"].interpretation
    assert "already held" in (by_id["jx-2022-gigabit-cities"].interpretation or "")
    listed = run("targets", "list", "--file", str(DEFAULT_TARGETS_FILE), "--json")
    assert listed.exit_code == 0, listed.output
    shown = {t["id"]: t for t in json.loads(listed.output)}
    assert set(shown) == set(by_id) and all(shown[i]["source"] == by_id[i].source for i in shown)


def _official_release(path: Path) -> None:
    """As the statistics publish them: province totals for all operators, a 1–9月新建 year-to-date count, one
    national figure; no city breakdown.

      bs5g_total 40,000 (2021-12) → 42,000 (2022-09): the stock grew by 2,000
      bs5g_built_ytd 1–9月 20,000                                   (jx-2022-5g-new ≥ 14,000 → achieved)
      iot_connections_pan 20 M (2021-12), 26/27/28 M (2022-07…09)   (jx-2022-iot-pan 30 M: expected 27.5 M
                                                                     at 30 Sep, trend reaches ~31 M → on_track)
      national bs5g_total 2,220,000 (2022-Q3)
    """
    path.write_text(
        "ts,region,metric,value,operator\n"
        "2021-12,360000,bs5g_total,40000,all\n"
        "2022-09,360000,bs5g_total,42000,all\n"
        "2022-09,360000,bs5g_built_ytd,20000,all\n"
        "2021-12,360000,iot_connections_pan,20000000,all\n"
        "2022-07,360000,iot_connections_pan,26000000,all\n"
        "2022-08,360000,iot_connections_pan,27000000,all\n"
        "2022-09,360000,iot_connections_pan,28000000,all\n"
        "2022-Q3,100000,bs5g_total,2220000,all\n",
        encoding="utf-8",
    )


def test_status_as_of_gives_the_verdicts_official_figures_imply(
    db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    csv = tmp_path / "release.csv"
    _official_release(csv)
    loaded = run("load-csv", str(csv), "--json")
    assert loaded.exit_code == 0, loaded.output
    assert run("targets", "load").exit_code == 0
    status = run(
        "status", "--as-of", "2022-09-30", "--json", "--target", "jx-2022-5g-new", "--target", "jx-2022-iot-pan"
    )
    assert status.exit_code == 0, status.output
    progress = {p["target_id"]: p for p in json.loads(status.output)}
    new = progress["jx-2022-5g-new"]
    assert (new["status"], new["actual"], new["basis"]) == ("achieved", 20000, "reported")  # not the stock's 2,000
    assert progress["jx-2022-iot-pan"]["status"] == "on_track"
    assert indicator_value(conn, "bs5g_total", region=100000, as_of=parse_as_of("2022-10-01")).value == 2220000


def test_the_white_papers_baselines_load_as_reference_observations(db_url: str, conn: psycopg.Connection) -> None:
    loaded = run("load-csv", str(DATA_DIR / "white_paper_baselines.csv"), "--json")
    assert loaded.exit_code == 0, loaded.output
    v = indicator_value(conn, "bs5g_built", as_of=parse_as_of("2022-06-01"))
    assert (v.value, v.basis) == (49000, "reported")  # 建成 4.9万, beside 开通 6.1万
    assert indicator_value(conn, "bs5g_total", as_of=parse_as_of("2022-06-01")).value == 61000
    assert indicator_value(conn, "gigabit_cities", as_of=parse_as_of("2022-01-01")).value == 3
