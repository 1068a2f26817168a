"""Bulletins on the jiangxi-2023 scenario: the three files for a month and a quarter, every target in force
during the period with its status (and none other), all 11 cities ranked, the same numbers as `infrawatch status --as-of` at the period end,
bad input refused with exit 2, a period without targets in force saying so; and the scheduled bulletins: produced once
per period by two schedulers, sent (e-mail with the files, a robot with the link), served by the API and
the console."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from docx import Document
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from alerts.store import Channel, upsert_channel
from api.app import create_app
from bulletins import build_bulletin, parse_period, render_files
from bulletins.labels import fmt
from bulletins.ranking import STATUS_ZH
from bulletins.store import save_bulletin
from core.settings import Settings, get_settings
from infrawatch.scheduler import Scheduler
from metrics import list_targets
from metrics.timeutil import PLAN_TZ
from reference.regions import CITIES, REGIONS, subtree
from tests.api_support import make_keys
from tests.notify_support import SmtpSink, WebhookReceiver
from tests.scenario_support import ScenarioDatabases

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scenario_url(jiangxi_2023: ScenarioDatabases) -> Iterator[str]:
    """A clone of the session's jiangxi-2023 database (scenario, shipped targets, rollups), for this module."""
    with jiangxi_2023.clone("bulletin") as url:
        yield url


def iw(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrawatch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "INFRAWATCH_LOG_LEVEL": "WARNING", "INFRAWATCH_DATABASE_URL": url},
    )


def iw_here(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """The same command line run in this process (typer's runner): for the cases refused before any file is
    written, where a new interpreter's start would be most of the time."""
    from typer.testing import CliRunner

    from infrawatch.cli import app

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, list(args), env={"INFRAWATCH_LOG_LEVEL": "WARNING", "INFRAWATCH_DATABASE_URL": url}
        )
    finally:
        get_settings.cache_clear()
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def in_force(url: str, first: date, last: date, region: int = 360000) -> set[str]:
    """The active targets whose [start, deadline] overlaps [first, last], in the region or below it."""
    with psycopg.connect(url) as conn:
        return {
            t.id for t in list_targets(conn) if t.start <= last and t.deadline >= first and t.region in subtree(region)
        }


PERIODS = {"2023-09": (date(2023, 9, 1), date(2023, 9, 30)), "2023-Q3": (date(2023, 7, 1), date(2023, 9, 30))}


def docx_text(data: bytes) -> str:
    doc = Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        for row in t.rows:
            parts.append(" | ".join(c.text for c in row.cells))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def written(scenario_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`infrawatch bulletin` for 2023-09 and 2023-Q3, both written into one folder."""
    out = tmp_path_factory.mktemp("bulletins")
    for period in ("2023-09", "2023-Q3"):
        result = iw("bulletin", "--period", period, "--out", str(out), url=scenario_url)
        assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def status_q3_end(scenario_url: str) -> dict[str, dict]:
    """`infrawatch status --as-of 2023-09-30 --json`, by target id."""
    result = iw("status", "--as-of", "2023-09-30", "--json", url=scenario_url)
    assert result.returncode == 0, result.stderr
    return {p["target_id"]: p for p in json.loads(result.stdout)}


def test_command_writes_the_three_files_for_a_month_and_a_quarter(written: Path) -> None:
    assert sorted(p.name for p in written.iterdir()) == [
        f"bulletin-360000-{period}.{ext}" for period in ("2023-09", "2023-Q3") for ext in ("docx", "pdf", "xlsx")
    ]
    for period, heading in (("2023-09", "2023年9月"), ("2023-Q3", "2023年第三季度")):
        pdf = (written / f"bulletin-360000-{period}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"/FontFile" in pdf  # the CJK font is embedded
        text = docx_text((written / f"bulletin-360000-{period}.docx").read_bytes())
        assert heading in text and "数据截至2023年9月30日24时" in text
        assert load_workbook(written / f"bulletin-360000-{period}.xlsx").sheetnames[:3] == [
            "目标进展",
            "地市增长排名",
            "运营商增长排名",
        ]


@pytest.mark.parametrize("period", ["2023-09", "2023-Q3"])
def test_document_lists_every_target_in_force_with_its_status(
    written: Path, scenario_url: str, status_q3_end: dict[str, dict], period: str
) -> None:
    with psycopg.connect(scenario_url) as conn:
        active = {t.id for t in list_targets(conn)}
    assert set(status_q3_end) == active and len(active) >= 16
    listed = in_force(scenario_url, *PERIODS[period])
    # the 2022 targets ended before 2023: the rule leaves some out and keeps the 2023 and 2025 ones
    assert len(listed) >= 16 and active - listed and all(t.startswith(("jx-2023-", "gz-2025-")) for t in listed)
    text = docx_text((written / f"bulletin-360000-{period}.docx").read_bytes())
    for target_id, p in status_q3_end.items():
        rows = [line for line in text.splitlines() if line.startswith(target_id + " |")]
        if target_id not in listed:
            assert not rows and f"目标编号：{target_id}；" not in text, target_id
            continue
        assert rows[0].split(" | ")[1] == STATUS_ZH[p["status"]], (target_id, rows[0])
        assert f"目标编号：{target_id}；" in text


def test_numbers_equal_status_as_of_the_period_end(
    scenario_url: str, written: Path, status_q3_end: dict[str, dict]
) -> None:
    with psycopg.connect(scenario_url) as conn:
        b = build_bulletin(conn, parse_period("2023-Q3"))
    assert b.as_of.isoformat() == "2023-09-30T23:59:59.999999+08:00"
    listed = in_force(scenario_url, *PERIODS["2023-Q3"])
    assert {s.progress.target_id for s in b.targets} == listed and listed < set(status_q3_end)
    for s in b.targets:
        p = status_q3_end[s.progress.target_id]
        assert s.progress.status == p["status"]
        for k in ("actual", "expected", "projected", "goal"):
            got, want = getattr(s.progress, k), p[k]
            assert got == (None if want is None else pytest.approx(want)), (s.progress.target_id, k)
    # what the document prints is those numbers, formatted
    text = docx_text((written / "bulletin-360000-2023-Q3.docx").read_bytes())
    for target_id in ("jx-2023-5g-new", "jx-2023-ipv6-fixed", "jx-2023-gigabit-users"):
        p = status_q3_end[target_id]
        assert p["status"] != "no_data"
        row = next(line for line in text.splitlines() if line.startswith(target_id + " |")).split(" | ")
        assert row[2:5] == [fmt(p["actual"], p["unit"]), fmt(p["expected"], p["unit"]), fmt(p["projected"], p["unit"])]
    # the workbook holds them unformatted
    wb = load_workbook(written / "bulletin-360000-2023-Q3.xlsx")
    by_id = {r[0]: r for r in wb["目标进展"].iter_rows(min_row=2, values_only=True)}
    assert set(by_id) == listed
    for target_id in listed:
        p = status_q3_end[target_id]
        assert by_id[target_id][3] == (None if p["actual"] is None else pytest.approx(p["actual"])), target_id


def test_workbook_ranks_all_eleven_cities(written: Path) -> None:
    wb = load_workbook(written / "bulletin-360000-2023-09.xlsx")
    rows = list(wb["地市增长排名"].iter_rows(min_row=2, values_only=True))
    for indicator in ("5G基站数", "千兆宽带用户数", "固定网络IPv6流量占比"):
        block = [r for r in rows if r[0] == indicator]
        assert sorted(int(r[3]) for r in block) == sorted(CITIES), indicator
        assert [r[2] for r in block] == list(range(1, 12)), indicator  # every city ranked, 1 to 11
        assert {r[4] for r in block} == {REGIONS[c].name_zh for c in CITIES}
        changes = [r[7] for r in block]
        assert changes == sorted(changes, reverse=True), indicator
    # September: every city built 5G base stations (the scenario grows them every month)
    assert all(r[7] > 0 for r in rows if r[0] == "5G基站数")


def test_unknown_period_or_region_exits_2(scenario_url: str, tmp_path: Path) -> None:
    bad = iw_here("bulletin", "--period", "2023-13", "--out", str(tmp_path), url=scenario_url)
    assert bad.returncode == 2 and "unknown period '2023-13'" in bad.stderr
    bad = iw_here("bulletin", "--period", "2023-Q5", "--out", str(tmp_path), url=scenario_url)
    assert bad.returncode == 2 and "2023-Q3" in bad.stderr
    bad = iw_here("bulletin", "--period", "2023-09", "--region", "123456", "--out", str(tmp_path), url=scenario_url)
    assert bad.returncode == 2 and "unknown region '123456'" in bad.stderr
    assert not list(tmp_path.iterdir())


def test_period_without_data_says_so(scenario_url: str, tmp_path: Path) -> None:
    result = iw_here("bulletin", "--period", "2021-06", "--out", str(tmp_path), url=scenario_url)
    assert result.returncode == 0, result.stderr
    assert in_force(scenario_url, date(2021, 6, 1), date(2021, 6, 30)) == set()
    text = docx_text((tmp_path / "bulletin-360000-2021-06.docx").read_bytes())
    assert "本期无监测数据" in text
    # no target is in force in June 2021: both the summary and the progress section say so, none is listed
    assert "截至2021年6月末，暂无纳入监测的规划目标。" in text
    assert "二、各项目标进展\n本期暂无纳入监测的规划目标。" in text
    assert "目标编号：" not in text and "jx-20" not in text
    wb = load_workbook(tmp_path / "bulletin-360000-2021-06.xlsx")
    assert next(iter(wb["目标进展"].iter_rows(min_row=2, values_only=True)))[0] == "本期暂无纳入监测的规划目标"
    assert next(iter(wb["地市增长排名"].iter_rows(min_row=2, values_only=True)))[0] == "本期无可比较的增长数据"


# -- the scheduled bulletins: produced once per period, stored, served, sent ------------------------------

OCT_5 = datetime(2023, 10, 5, 10, 0, tzinfo=PLAN_TZ)  # day 5 of the month after September and Q3 close


def _scheduler_settings(tmp_path: Path) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")
    return Settings(alerts_rules_file=rules)


def _bulletin_rows(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as c:
        return [(r[0], r[1]) for r in c.execute("SELECT period, created_by FROM bulletin ORDER BY period")]


def test_two_schedulers_produce_each_period_bulletin_once_and_send_it(
    scenario_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRAWATCH_DATABASE_URL", scenario_url)
    monkeypatch.setenv("INFRAWATCH_PUBLIC_URL", "https://iw.example.org")
    monkeypatch.setenv("INFRAWATCH_BULLETIN_DAY", "3")
    get_settings.cache_clear()
    receiver = WebhookReceiver().start()
    sink = SmtpSink().start()
    try:
        with psycopg.connect(scenario_url) as conn:
            upsert_channel(conn, Channel(name="robot", kind="dingtalk", config={"url": receiver.url}))
            mail = {"host": "127.0.0.1", "port": sink.port, "from": "iw@example.org", "to": ["office@example.org"]}
            upsert_channel(conn, Channel(name="mail", kind="email", config=mail))
            conn.commit()
        settings = _scheduler_settings(tmp_path)
        a = Scheduler(scenario_url, settings, runner="a")
        b = Scheduler(scenario_url, settings, runner="b")

        # 2 October: September and Q3 have closed, but the bulletin day (3) has not come
        assert a.run("bulletins", OCT_5 - timedelta(days=3)) is True
        assert _bulletin_rows(scenario_url) == []

        # both schedulers at once, then again in later intervals: one bulletin per period
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.run("bulletins", OCT_5), (a, b)))
        assert b.run("bulletins", OCT_5 + timedelta(hours=1)) is True
        assert a.run("bulletins", OCT_5 + timedelta(hours=2)) is True
        rows = _bulletin_rows(scenario_url)
        assert [p for p, _ in rows] == ["2023-09", "2023-Q3"]
        assert {by for _, by in rows} <= {"scheduler:a", "scheduler:b"}

        # sent once to each channel: the robot gets a link, the e-mail the three files
        robot = [r.body for r in receiver.delivered]
        assert len(robot) == 2 and all(m["msgtype"] == "markdown" for m in robot)
        assert all("https://iw.example.org/bulletins#bulletin-" in m["markdown"]["text"] for m in robot)
        assert {m["markdown"]["title"] for m in robot} == {
            "[通报] 江西省2023年9月数字基础设施规划目标月度通报",
            "[通报] 江西省2023年第三季度数字基础设施规划目标季度通报",
        }
        assert len(sink.messages) == 2
        for m in sink.messages:
            names = sorted(part.get_filename() for part in m.iter_attachments())
            assert [n.rsplit(".", 1)[1] for n in names] == ["docx", "pdf", "xlsx"]
            pdf = next(p for p in m.iter_attachments() if p.get_filename().endswith(".pdf"))
            assert pdf.get_content().startswith(b"%PDF")
        with psycopg.connect(scenario_url) as conn:
            states = conn.execute("SELECT state, count(*) FROM bulletin_delivery GROUP BY state").fetchall()
        assert states == [("sent", 4)]
    finally:
        receiver.stop()
        sink.stop()
        get_settings.cache_clear()


def test_api_and_console_serve_the_stored_bulletins(
    scenario_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRAWATCH_DATABASE_URL", scenario_url)
    get_settings.cache_clear()
    with psycopg.connect(scenario_url) as conn:
        if not conn.execute("SELECT 1 FROM bulletin WHERE period = '2023-09'").fetchone():
            b = build_bulletin(conn, parse_period("2023-09"))
            save_bulletin(conn, b, render_files(b), created_by="test")
    keys = make_keys(scenario_url)
    app = create_app(get_settings(), db_timeout=3.0)
    try:
        with TestClient(app) as client:
            assert client.get("/v1/bulletins").status_code == 401
            assert client.get("/v1/bulletins", headers={"Authorization": f"Bearer {keys['cmcc']}"}).status_code == 403
            viewer = {"Authorization": f"Bearer {keys['viewer']}"}
            listed = client.get("/v1/bulletins", headers=viewer).json()["bulletins"]
            sept = next(b for b in listed if b["period"] == "2023-09")
            assert sept["kind"] == "month" and sept["region"] == 360000 and sept["period_end"] == "2023-09-30"
            assert set(sept["files"]) == {"docx", "pdf", "xlsx"}
            assert sept["summary"]["counts"]["achieved"] >= 1
            pdf = client.get(sept["files"]["pdf"], headers=viewer)
            assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
            assert pdf.content.startswith(b"%PDF")
            docx = client.get(f"/v1/bulletins/{sept['id']}/bulletin-360000-2023-09.docx", headers=viewer)
            assert "2023年9月" in docx_text(docx.content)
            assert client.get(f"/v1/bulletins/{sept['id']}/zip", headers=viewer).status_code == 404

            client.post("/signin", data={"key": keys["viewer"]}, follow_redirects=False)
            page = client.get("/bulletins")
            assert page.status_code == 200
            assert f'href="/bulletins/{sept["id"]}/pdf"' in page.text and "2023-09" in page.text
            assert '<a href="/bulletins" aria-current="page">' in page.text
            xlsx = client.get(f"/bulletins/{sept['id']}/xlsx")
            assert xlsx.status_code == 200 and "地市增长排名" in load_workbook(io.BytesIO(xlsx.content)).sheetnames
    finally:
        get_settings.cache_clear()
