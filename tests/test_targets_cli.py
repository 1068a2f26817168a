"""The targets and status commands end to end: a CSV of monthly city figures loaded with `infrawatch
load-csv`, the default targets loaded with `infrawatch targets load`, then `infrawatch status --as-of`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from collectors.csvfile import load_csv
from metrics import DEFAULT_TARGETS_FILE, list_targets, load_targets, retire_target
from metrics.targets import read_targets_file
from reference.regions import CITIES

DOMAIN_IDS = {
    "jx-2022-5g-new",
    "jx-2022-5g-users-new",
    "jx-2022-gigabit-cities",
    "jx-2022-iot-pan",
    "jx-2022-ipv6-mobile",
    "jx-2022-ipv6-fixed",
    "jx-2023-5g-new",
    "jx-2023-ipv6-mobile",
    "jx-2023-ipv6-fixed",
    "jx-2023-gigabit-users",
    "jx-2023-gigabit-cities",
    "jx-2023-iot-mobile",
    "jx-2023-iot-over-pop",
    "gz-2025-5g-total",
    "gz-2025-dc-pue",
    "gz-2025-5g-efficiency",
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess (slow to start: use for the must-show run only)."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "infrawatch", *args], capture_output=True, text=True, timeout=180, check=False, env=env
    )


def run(*args: str) -> Result:
    """The same command line in-process."""
    from infrawatch.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_default_target_file_holds_every_target_of_the_domain_with_its_source() -> None:
    targets = read_targets_file(DEFAULT_TARGETS_FILE)
    assert {t.id for t in targets} >= DOMAIN_IDS  # the first set's ids are kept; the seeds' others follow
    assert all(t.source and "," in t.source for t in targets)
    by_id = {t.id: t for t in targets}
    assert by_id["jx-2023-iot-over-pop"].goal_indicator == "population"
    assert by_id["gz-2025-5g-efficiency"].goal_relative == pytest.approx(0.20)
    assert by_id["gz-2025-dc-pue"].comparator == "<" and by_id["gz-2025-dc-pue"].region == 360700


def test_bad_targets_file_is_refused_with_the_target_named(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "targets:\n  - {id: x1, title: X, indicator: nope, comparator: '>=', goal: 1,"
        " start: 2023-01-01, deadline: 2023-12-31}\n"
    )
    with pytest.raises(ValueError, match=r"x1.*unknown indicator"):
        read_targets_file(bad)


def test_retired_target_leaves_the_active_list(conn: psycopg.Connection) -> None:
    n = load_targets(conn)
    assert n == len(read_targets_file(DEFAULT_TARGETS_FILE))
    assert retire_target(conn, "jx-2022-iot-pan") is True
    assert retire_target(conn, "no-such-target") is False
    assert "jx-2022-iot-pan" not in {t.id for t in list_targets(conn)}
    assert len(list_targets(conn, include_retired=True)) == n


def _monthly_csv(path: Path) -> None:
    """Wide CSV, one row per city and month, 2022-12 … 2023-12 (cmcc), plus the administration's rows.

    December 2023, summed over the 11 cities (targets of 2023 in brackets):
      bs5g_total 5000 → 6700 per city: 1700 × 11 = 18,700 new        (≥ 18,000 → achieved)
      IPv6 mobile 560 of 1000 GB per city: 56 %                      (≥ 55 % → achieved)
      IPv6 fixed 160 of 1000 GB: 16 %                                (≥ 17 % → missed)
      gigabit_users 370,000 × 11 = 4,070,000                         (> 4,000,000 → achieved)
      gigabit cities: 10 of 11                                       (≥ 11 → missed)
      iot_terminals_mobile 3,000,000 × 11 = 33,000,000               (> 35,000,000 → missed)
      iot_connections_pan 4,200,000 × 11 = 46,200,000 > population 45,279,800 (物超人 → achieved)
    """
    cols = [
        "bs5g_total",
        "gigabit_users",
        "iot_terminals_mobile",
        "iot_connections_pan",
        "traffic_mobile_gb",
        "ipv6_traffic_mobile_gb",
        "traffic_fixed_gb",
        "ipv6_traffic_fixed_gb",
    ]
    lines = ["ts,region,operator," + ",".join(cols) + ",gigabit_city,population"]
    months = ["2022-12"] + [f"2023-{m:02d}" for m in range(1, 13)]
    for k, month in enumerate(months):  # k = 0 … 12
        for city in CITIES:
            values = [
                5000 + round(1700 * k / 12),
                250_000 + 10_000 * k,
                2_000_000 + round(1_000_000 * k / 12),
                3_600_000 + 50_000 * k,
                1000,
                400 + round(160 * k / 12),
                1000,
                100 + 5 * k,
            ]
            lines.append(f"{month},{city},cmcc," + ",".join(str(v) for v in values) + ",,")
    for i, city in enumerate(CITIES):
        lines.append(f"2023-12,{city},admin," + "," * len(cols) + ("1" if i < 10 else "0") + ",")
    lines.append("2022-12,360000,admin," + "," * len(cols) + ",45279800")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_status_as_of_end_of_2023_on_monthly_csv_figures(db_url: str, conn: psycopg.Connection, tmp_path: Path) -> None:
    csv = tmp_path / "monthly.csv"
    _monthly_csv(csv)
    report = load_csv(conn, csv, operator=None, operator_column_trusted=True)
    assert report.rejected == 0 and report.accepted == 11 * 13 * 8 + 11 + 1
    assert f"loaded {len(read_targets_file(DEFAULT_TARGETS_FILE))} targets" in run("targets", "load").stdout

    status = cli("status", "--as-of", "2023-12-31", "--json")  # the real command, as the administration runs it
    assert status.returncode == 0, status.stderr
    progress = {p["target_id"]: p for p in json.loads(status.stdout)}
    statuses = {tid: p["status"] for tid, p in progress.items() if tid.startswith("jx-2023") and tid in DOMAIN_IDS}
    assert statuses == {
        "jx-2023-5g-new": "achieved",
        "jx-2023-ipv6-mobile": "achieved",
        "jx-2023-ipv6-fixed": "missed",
        "jx-2023-gigabit-users": "achieved",
        "jx-2023-gigabit-cities": "missed",
        "jx-2023-iot-mobile": "missed",
        "jx-2023-iot-over-pop": "achieved",
    }
    assert progress["jx-2023-5g-new"]["actual"] == 18700
    assert progress["jx-2023-enterprises-cloud"]["status"] == "no_data"  # the seeds' other targets: not in this CSV
    assert progress["jx-2023-ipv6-fixed"]["actual"] == pytest.approx(16.0)
    assert progress["jx-2023-iot-over-pop"]["goal"] == 45279800
    assert progress["jx-2023-gigabit-cities"]["actual"] == 10
    # the city without the designation is the laggard
    assert [lg["key"] for lg in progress["jx-2023-gigabit-cities"]["laggard_cities"]] == [str(CITIES[-1])]

    # mid-year the same data gives a judgement on pace instead
    mid = {p["target_id"]: p for p in json.loads(run("status", "--as-of", "2023-06-30", "--json").stdout)}
    assert mid["jx-2023-5g-new"]["status"] == "on_track"  # 850 × 11 = 9350 new vs expected 8926
    assert mid["jx-2023-iot-mobile"]["status"] == "off_track"  # trend reaches 33 M, not 35 M

    table = run("status", "--as-of", "2023-12-31", "--target", "jx-2023-ipv6-fixed")
    assert table.exit_code == 0 and "missed" in table.stdout and "jx-2023-ipv6-fixed" in table.stdout
    shown = run("targets", "show", "jx-2023-iot-over-pop", "--as-of", "2023-12-31")
    assert "achieved" in shown.stdout and "population" in shown.stdout
    listed = run("targets", "list")
    assert listed.exit_code == 0 and "gz-2025-dc-pue" in listed.stdout


def test_status_refuses_an_unknown_target_and_a_bad_date(db_url: str) -> None:
    unknown = run("status", "--target", "nope")
    assert unknown.exit_code == 1 and "no target 'nope'" in unknown.output
    bad = run("status", "--as-of", "31/12/2023")
    assert bad.exit_code == 2 and "--as-of" in bad.output
