"""Bulletins on the jiangxi-2023 scenario: the three files for a month and a quarter, every active target
with its status, all 11 cities ranked, the same numbers as `infrawatch status --as-of` at the period end,
bad input refused with exit 2, and a period without data saying so."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from docx import Document
from openpyxl import load_workbook

from bulletins import build_bulletin, parse_period, render_files
from bulletins.labels import fmt
from bulletins.ranking import STATUS_ZH
from collectors.csvfile import load_csv
from metrics import list_targets, load_targets
from reference.regions import CITIES, REGIONS
from simulators.generate import scenario_window
from simulators.run import backfill
from simulators.scenario import load_scenario
from simulators.sinks.csvfile import CsvSink
from tests.conftest import with_dbname

ROOT = Path(__file__).resolve().parents[1]
#: jiangxi-2023 as the integration test loads it: monthly statistics as shipped, traffic and base-station
#: energy weekly, data-centre meters every 6 hours.
VARIANT = {
    "traffic": [{**t.model_dump(), "cadence": "7d"} for t in load_scenario("jiangxi-2023").traffic],
    "base_station_energy": {"cadence": "7d"},
    "data_centres": {"cadence": "6h"},
}


def load_scenario_db(url: str, tmp: Path) -> None:
    sc = load_scenario("jiangxi-2023", VARIANT)
    w = scenario_window(sc)
    backfill(sc, CsvSink(sc, tmp), w.start_us, w.end_us)
    with psycopg.connect(url) as conn:
        for path in sorted(tmp.iterdir()):
            report = load_csv(conn, path, operator=None, operator_column_trusted=True)
            assert not report.rejected, report.errors[:3]
        load_targets(conn)
        conn.commit()


@pytest.fixture(scope="module")
def scenario_url(pg_server: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database holding jiangxi-2023 and the shipped targets, shared by this module's tests (read only)."""
    name = f"iw_bulletin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = with_dbname(pg_server, name)
    load_scenario_db(url, tmp_path_factory.mktemp("jx2023-csv"))
    yield url
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def iw(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrawatch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "INFRAWATCH_LOG_LEVEL": "WARNING", "INFRAWATCH_DATABASE_URL": url},
    )


def docx_text(data: bytes) -> str:
    doc = Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        for row in t.rows:
            parts.append(" | ".join(c.text for c in row.cells))
    return "\n".join(parts)


@pytest.mark.parametrize("period", ["2023-09", "2023-Q3"])
def test_command_writes_the_three_files_with_every_active_target_and_its_status(
    scenario_url: str, tmp_path: Path, period: str
) -> None:
    result = iw("bulletin", "--period", period, "--out", str(tmp_path), url=scenario_url)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"bulletin-360000-{period}.{ext}" for ext in ("docx", "pdf", "xlsx")]
    pdf = (tmp_path / f"bulletin-360000-{period}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/FontFile" in pdf  # the CJK font is embedded
    text = docx_text((tmp_path / f"bulletin-360000-{period}.docx").read_bytes())
    assert "第三季度" in text if period.endswith("Q3") else "2023年9月" in text
    status = json.loads(iw("status", "--as-of", "2023-09-30", "--json", url=scenario_url).stdout)
    with psycopg.connect(scenario_url) as conn:
        active = {t.id for t in list_targets(conn)}
    assert {p["target_id"] for p in status} == active
    for p in status:
        row = next(line for line in text.splitlines() if line.startswith(p["target_id"] + " |"))
        assert STATUS_ZH[p["status"]] in row, (p["target_id"], row)


def test_numbers_equal_status_as_of_the_period_end(scenario_url: str) -> None:
    status = {
        p["target_id"]: p for p in json.loads(iw("status", "--as-of", "2023-09-30", "--json", url=scenario_url).stdout)
    }
    with psycopg.connect(scenario_url) as conn:
        b = build_bulletin(conn, parse_period("2023-Q3"))
    assert b.as_of.isoformat() == "2023-09-30T23:59:59.999999+08:00"
    assert {s.progress.target_id for s in b.targets} == set(status)
    for s in b.targets:
        p = status[s.progress.target_id]
        assert s.progress.status == p["status"]
        for k in ("actual", "expected", "projected", "goal"):
            got, want = getattr(s.progress, k), p[k]
            assert got == (None if want is None else pytest.approx(want)), (s.progress.target_id, k)
    # what the document prints is those numbers, formatted
    text = docx_text(render_files(b)[0].content)
    five_g = status["jx-2023-5g-new"]
    assert five_g["status"] != "no_data"
    assert f"jx-2023-5g-new | {STATUS_ZH[five_g['status']]} | {fmt(five_g['actual'], 'count')}" in text


def test_workbook_ranks_all_eleven_cities(scenario_url: str) -> None:
    with psycopg.connect(scenario_url) as conn:
        b = build_bulletin(conn, parse_period("2023-09"))
    xlsx = next(f for f in render_files(b) if f.kind == "xlsx")
    wb = load_workbook(io.BytesIO(xlsx.content))
    rows = list(wb["地市增长排名"].iter_rows(min_row=2, values_only=True))
    base = [r for r in rows if r[0] == "5G基站数"]
    assert sorted(int(r[3]) for r in base) == sorted(CITIES)
    assert [r[2] for r in base] == list(range(1, 12))  # every city ranked, 1 to 11
    changes = [r[7] for r in base]
    assert changes == sorted(changes, reverse=True) and all(c is not None and c > 0 for c in changes)
    assert {r[4] for r in base} == {REGIONS[c].name_zh for c in CITIES}
    assert len(list(wb["目标进展"].iter_rows(min_row=2))) == len(b.targets)


def test_unknown_period_or_region_exits_2(scenario_url: str, tmp_path: Path) -> None:
    bad = iw("bulletin", "--period", "2023-13", "--out", str(tmp_path), url=scenario_url)
    assert bad.returncode == 2 and "unknown period '2023-13'" in bad.stderr
    bad = iw("bulletin", "--period", "2023-Q5", "--out", str(tmp_path), url=scenario_url)
    assert bad.returncode == 2 and "2023-Q3" in bad.stderr
    bad = iw("bulletin", "--period", "2023-09", "--region", "123456", "--out", str(tmp_path), url=scenario_url)
    assert bad.returncode == 2 and "unknown region 123456" in bad.stderr
    assert not list(tmp_path.iterdir())


def test_period_without_data_says_so(scenario_url: str, tmp_path: Path) -> None:
    result = iw("bulletin", "--period", "2021-06", "--out", str(tmp_path), url=scenario_url)
    assert result.returncode == 0, result.stderr
    text = docx_text((tmp_path / "bulletin-360000-2021-06.docx").read_bytes())
    assert "本期无监测数据" in text
    assert "暂无数据" in text
    wb = load_workbook(tmp_path / "bulletin-360000-2021-06.xlsx")
    assert next(iter(wb["地市增长排名"].iter_rows(min_row=2, values_only=True)))[0] == "本期无可比较的增长数据"
