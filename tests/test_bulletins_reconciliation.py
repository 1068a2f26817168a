"""A bulletin's reconciliation gaps and its Chinese names: a province total (the `all` operator's figure for
360000) and a city's `all` figure that disagree with the sums of their parts appear, with the region's name,
in the bulletin's content, its Word document and its workbook, largest gap first; a metric shared by several
indicators is listed once, zero gaps not at all; and every metric and indicator of the catalogue has a
Chinese name and unit, so none can appear in a bulletin as a bare identifier."""

from __future__ import annotations

import io
import re
from datetime import date, datetime

import psycopg
import pytest
from docx import Document
from openpyxl import load_workbook

from bulletins import build_bulletin, parse_period, render_files
from bulletins.labels import COUNT_UNIT_ZH, INDICATOR_ZH, UNIT_ZH, indicator_zh, unit_zh
from bulletins.reconciliation import NO_GAPS_ZH, gaps_from_rows
from ingest.pipeline import IngestPipeline
from metrics import Target, upsert_target
from metrics.reconciliation import ReconciliationRow
from metrics.timeutil import PLAN_TZ
from reference.catalogue import INDICATORS, METRICS

PIPE = IngestPipeline()
SEPT_30 = "2023-09-30T00:00:00+08:00"
#: 9 of Jiangxi's 11 cities report their 5G base stations (China Mobile), 100 each
NINE_CITIES = [360100, 360200, 360300, 360400, 360500, 360600, 360700, 360800, 360900]


def push(conn: psycopg.Connection, metric: str, points: list[tuple[int, float]], operator: str) -> None:
    items = [{"ts": SEPT_30, "region": str(r), "value": v, "operator": operator} for r, v in points]
    report = PIPE.submit_items(conn, items, source="test", operator="admin", metric=metric, operator_may_vary=True)
    assert report.rejected == 0, report.rejections


def target(tid: str, indicator: str, goal: float) -> Target:
    return Target(
        id=tid,
        title=f"{tid} (test)",
        indicator=indicator,
        comparator=">=",
        goal=goal,
        start=date(2023, 1, 1),
        deadline=date(2023, 12, 31),
    )


def docx_text(data: bytes) -> str:
    doc = Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        for row in t.rows:
            parts.append(" | ".join(c.text for c in row.cells))
    return "\n".join(parts)


@pytest.fixture
def disagreeing(conn: psycopg.Connection) -> psycopg.Connection:
    """Jiangxi's own total of 5G base stations (1,000, all operators) beside its cities' 900; Nanchang's
    5G users of all operators (1,300) beside China Mobile's 700 and China Telecom's 200; targets in force on
    both, and one on the stock's increase (bs5g_net_new reads bs5g_total too)."""
    push(conn, "bs5g_total", [(360000, 1000)], operator="all")
    push(conn, "bs5g_total", [(c, 100) for c in NINE_CITIES], operator="cmcc")
    push(conn, "users_5g", [(360100, 700)], operator="cmcc")
    push(conn, "users_5g", [(360100, 200)], operator="ctcc")
    push(conn, "users_5g", [(360100, 1300)], operator="all")
    for t in (
        target("t-bs5g", "bs5g_total", 2000),
        target("t-bs5g-new", "bs5g_net_new", 500),
        target("t-users", "users_5g", 5000),
    ):
        upsert_target(conn, t)
    conn.commit()
    return conn


def test_province_and_city_totals_beside_their_parts_appear_in_the_bulletin(disagreeing: psycopg.Connection) -> None:
    b = build_bulletin(disagreeing, parse_period("2023-Q3"), generated_at=datetime(2023, 10, 5, tzinfo=PLAN_TZ))
    got = [
        (g.metric, g.region, g.region_name, g.operator, g.axis, g.reported, g.sum_of_parts, g.gap)
        for g in b.reconciliation
    ]
    # largest |gap| first: Nanchang's users (400) before the province's base stations (100), which disagree
    # with the sum of the cities and with the sum of the operators (China Mobile's figures in the cities)
    assert got == [
        ("users_5g", 360100, "南昌市", "all", "operators", 1300, 900, 400),
        ("bs5g_total", 360000, "江西省", "all", "operators", 1000, 900, 100),
        ("bs5g_total", 360000, "江西省", "all", "regions", 1000, 900, 100),
    ]
    # bs5g_total is read by two targets' indicators (the level and its increase): listed once per axis, as the
    # level, the same rows as the metrics layer's reconciliation of bs5g_total
    assert all(g.indicator == g.metric and not g.increase and g.basis_zh == "期末值" for g in b.reconciliation)
    prov = b.reconciliation[2]
    assert (prov.parts_reporting, prov.parts_total) == (9, 11)

    files = {f.kind: f.content for f in render_files(b)}
    text = docx_text(files["docx"])
    assert NO_GAPS_ZH not in text
    section = text[text.index("五、对账差异") :]
    assert "5G终端用户数 | 南昌市 | 全行业 | 各运营商合计 | 1,300 | 900 | 400 | 2/" in section
    assert "5G基站数 | 江西省 | 全行业 | 下级地区合计 | 1,000 | 900 | 100 | 9/11" in section
    assert section.index("南昌市") < section.index("江西省")

    wb = load_workbook(io.BytesIO(files["xlsx"]))
    ws = wb["对账差异"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert [(r["指标"], r["地区"], r["地区名称"], r["运营商"], r["分项"], r["差异"]) for r in rows] == [
        ("users_5g", 360100, "南昌市", "all", "各运营商合计", 400),
        ("bs5g_total", 360000, "江西省", "all", "各运营商合计", 100),
        ("bs5g_total", 360000, "江西省", "all", "下级地区合计", 100),
    ]
    by_cities = rows[2]
    assert (by_cities["指标名称"], by_cities["上报总数"], by_cities["分项之和"], by_cities["口径"]) == (
        "5G基站数",
        1000,
        900,
        "期末值",
    )
    assert (by_cities["分项报送"], by_cities["分项总数"], by_cities["差异占比"]) == (9, 11, pytest.approx(0.1))


def test_a_bulletin_without_disagreement_says_so(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", [(c, 100) for c in NINE_CITIES], operator="cmcc")
    upsert_target(conn, target("t-bs5g", "bs5g_total", 2000))
    conn.commit()
    b = build_bulletin(conn, parse_period("2023-09"))
    assert b.reconciliation == []
    files = {f.kind: f.content for f in render_files(b)}
    assert NO_GAPS_ZH in docx_text(files["docx"])
    ws = load_workbook(io.BytesIO(files["xlsx"]))["对账差异"]
    assert next(iter(ws.iter_rows(min_row=2, values_only=True)))[0] == NO_GAPS_ZH


def _row(indicator: str, metric: str, region: int, reported: float, derived: float) -> ReconciliationRow:
    return ReconciliationRow(
        indicator=indicator,
        metric=metric,
        region=region,
        region_name=str(region),
        operator="all",
        axis="regions",
        reported=reported,
        derived=derived,
        gap=reported - derived,
        gap_share=None,
        parts_reporting=1,
        parts_total=11,
        start=None,
        as_of=datetime(2023, 9, 30, 23, 59, tzinfo=PLAN_TZ),
    )


def test_gaps_are_deduplicated_non_zero_and_largest_first() -> None:
    rows = [
        _row("bs5g_net_new", "bs5g_total", 360000, 300, 250),  # the increase: the level below wins
        _row("bs5g_total", "bs5g_total", 360000, 1000, 900),
        _row("bs5g_per_10k", "bs5g_total", 360000, 1000, 900),  # the same figures again
        _row("gigabit_users", "gigabit_users", 360000, 500, 500),  # no gap
        _row("users_5g", "users_5g", 360100, 100, 350),  # a negative gap, the largest
    ]
    gaps = gaps_from_rows(rows)
    assert [(g.indicator, g.metric, g.region, g.region_name, g.gap) for g in gaps] == [
        ("users_5g", "users_5g", 360100, "南昌市", -250),
        ("bs5g_total", "bs5g_total", 360000, "江西省", 100),
    ]


_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("item", sorted(set(METRICS) | set(INDICATORS)))
def test_every_metric_and_indicator_has_a_chinese_name_and_unit(item: str) -> None:
    assert item in INDICATOR_ZH, f"{item} has no Chinese name in bulletins/labels.py"
    assert _CJK.search(indicator_zh(item)), (item, indicator_zh(item))
    unit = INDICATORS[item].unit
    assert unit in UNIT_ZH, f"unit {unit!r} of {item} has no Chinese label in bulletins/labels.py"
    if unit not in ("ratio", "0/1"):
        assert unit_zh(item), item
    if unit == "count":
        assert _CJK.search(unit_zh(item)), item  # 个, 户, 家, 架 …


def test_names_and_units_name_only_what_the_catalogue_knows() -> None:
    known = set(METRICS) | set(INDICATORS)
    assert set(INDICATOR_ZH) <= known
    assert set(COUNT_UNIT_ZH) <= known and all(INDICATORS[i].unit == "count" for i in COUNT_UNIT_ZH)
    assert set(UNIT_ZH) == {i.unit for i in INDICATORS.values()}
    assert len(set(INDICATOR_ZH.values())) == len(INDICATOR_ZH)  # no two share a name
