"""The pure parts of bulletins, without a database: periods and when they are due, status counts and the
opening sentence, shortfall and growth rankings, late and silent feeds, the targets in force, chart ticks
and the PDF's Chinese line breaking (kinsoku)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from bulletins.charts import _axis_value, _figure, style, target_chart
from bulletins.content import TargetSection, targets_in
from bulletins.document import Block
from bulletins.feeds import FeedReport, late_feeds
from bulletins.fonts import CANDIDATES, NoCjkFont, find_cjk_font
from bulletins.periods import due_periods, parse_period
from bulletins.ranking import rank_growth, rank_shares, status_counts, summary_sentence
from bulletins.render_pdf import NO_LINE_END, NO_LINE_START, _page_break_at, kinsoku_lines, render_pdf
from core.settings import get_settings
from metrics import Progress, Target
from metrics.timeutil import PLAN_TZ


@pytest.mark.parametrize(
    ("text", "kind", "start", "end", "title"),
    [
        ("2023-09", "month", date(2023, 9, 1), date(2023, 9, 30), "2023年9月"),
        ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29), "2024年2月"),
        ("2023-Q3", "quarter", date(2023, 7, 1), date(2023, 9, 30), "2023年第三季度"),
        ("2023-q4", "quarter", date(2023, 10, 1), date(2023, 12, 31), "2023年第四季度"),
        ("2023", "year", date(2023, 1, 1), date(2023, 12, 31), "2023年"),
    ],
)
def test_periods_parse_to_their_first_and_last_day(text: str, kind: str, start: date, end: date, title: str) -> None:
    p = parse_period(text)
    assert (p.kind, p.start, p.end, p.title_zh) == (kind, start, end, title)
    assert p.as_of == datetime(end.year, end.month, end.day, tzinfo=PLAN_TZ) + timedelta(days=1, microseconds=-1)


@pytest.mark.parametrize("text", ["2023-13", "2023-00", "2023-Q5", "23-09", "2023/09", "September", "", "1969"])
def test_unknown_periods_are_refused_saying_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="give a month 2023-09, a quarter 2023-Q3 or a year 2023"):
        parse_period(text)


def test_previous_period_of_a_quarter_and_of_january() -> None:
    assert parse_period("2023-Q1").previous().label == "2022-Q4"
    assert parse_period("2023-01").previous().label == "2022-12"


def test_month_and_quarter_are_due_from_the_configured_day_of_the_next_month() -> None:
    assert due_periods(date(2023, 10, 2), 3) == []
    assert [p.label for p in due_periods(date(2023, 10, 3), 3)] == ["2023-09", "2023-Q3"]
    # in November the latest closed quarter is still Q3 (already produced in October: the store skips it)
    assert [p.label for p in due_periods(date(2023, 11, 5), 3)] == ["2023-10", "2023-Q3"]
    assert [p.label for p in due_periods(date(2024, 1, 10), 3, ("month", "quarter", "year"))] == [
        "2023-12",
        "2023-Q4",
        "2023",
    ]
    # a day past the month's length falls on its last day
    assert [p.label for p in due_periods(date(2023, 3, 28), 28)] == ["2023-02", "2022-Q4"]


def test_counts_and_sentence_name_every_status_present() -> None:
    counts = status_counts(["achieved", "achieved", "missed", "no_data", "on_track"])
    assert counts == {"achieved": 2, "on_track": 1, "at_risk": 0, "off_track": 0, "missed": 1, "no_data": 1}
    assert summary_sentence(counts, "2023年第三季度") == (
        "截至2023年第三季度末，纳入监测的规划目标共5项，其中已完成2项、进度正常1项、未完成1项、暂无数据1项。"
    )
    assert summary_sentence(status_counts([]), "2023年9月") == "截至2023年9月末，暂无纳入监测的规划目标。"


def test_shortfall_shares_rank_largest_first_and_unattributed_last() -> None:
    rows = rank_shares([("a", "A", 0.2, 1.0), ("b", "B", None, None), ("c", "C", 0.7, 2.0), ("d", "D", 0.1, 3.0)])
    assert [(r.rank, r.key) for r in rows] == [(1, "c"), (2, "a"), (3, "d"), (None, "b")]


def test_growth_ranks_every_part_by_change_and_lists_parts_without_figures_last() -> None:
    parts = [("1", "甲"), ("2", "乙"), ("3", "丙"), ("4", "丁")]
    start = {"1": 100.0, "2": 200.0, "3": 50.0}
    end = {"1": 130.0, "2": 210.0, "3": 90.0, "4": 10.0}
    rows = rank_growth(parts, start, end)
    assert [(r.rank, r.key, r.change) for r in rows] == [
        (1, "3", 40.0),
        (2, "1", 30.0),
        (3, "2", 10.0),
        (None, "4", None),
    ]
    assert rows[0].rate == pytest.approx(0.8)
    # PUE: lower is better, the largest fall ranks first
    pue = rank_growth(parts[:2], {"1": 1.6, "2": 1.5}, {"1": 1.4, "2": 1.55}, lower_is_better=True)
    assert [r.key for r in pue] == ["1", "2"]


def test_feeds_are_late_past_their_cadence_and_silent_past_twice_it() -> None:
    until = datetime(2023, 9, 30, 23, 59, tzinfo=PLAN_TZ)
    day = timedelta(days=1)
    reports = [
        FeedReport("cmcc", "traffic_mobile_gb", 360100, until - 0.5 * day),  # on time (daily)
        FeedReport("cmcc", "traffic_mobile_gb", 360200, until - 1.5 * day),  # late by half a day
        FeedReport("cucc", "traffic_mobile_gb", 360100, until - 5 * day),  # silent, 4 days over
        FeedReport("cucc", "traffic_mobile_gb", 360200, until - 3 * day),  # silent, 2 days over
        FeedReport("ctcc", "bs5g_total", 360100, until - 20 * day),  # monthly: on time
        FeedReport("admin", "population", 360000, until - 300 * day),  # reference series, not a feed
    ]
    got = late_feeds(reports, until)
    assert [(f.operator, f.state, f.regions, round(f.days_late, 2)) for f in got] == [
        ("cucc", "silent", 2, 4.0),
        ("cmcc", "late", 1, 0.5),
    ]


# -- targets in force, chart ticks, Chinese line breaking ----------------------------------------------------


def _target(tid: str, start: date, deadline: date, region: int = 360000) -> Target:
    return Target(
        id=tid,
        title=tid,
        indicator="bs5g_total",
        region=region,
        comparator=">=",
        goal=1.0,
        start=start,
        deadline=deadline,
    )


def test_targets_in_force_overlap_the_period_in_the_region_or_below() -> None:
    q3 = (date(2023, 7, 1), date(2023, 9, 30))
    targets = [
        _target("ended-2022", date(2022, 1, 1), date(2022, 12, 31)),
        _target("ends-on-first-day", date(2022, 1, 1), date(2023, 7, 1)),
        _target("year-2023", date(2023, 1, 1), date(2023, 12, 31)),
        _target("starts-on-last-day", date(2023, 9, 30), date(2024, 6, 30)),
        _target("starts-after", date(2023, 10, 1), date(2023, 12, 31)),
        _target("city-2025", date(2022, 1, 1), date(2025, 12, 31), region=360700),
        _target("county-2023", date(2023, 1, 1), date(2023, 12, 31), region=360702),
        _target("other-city", date(2023, 1, 1), date(2023, 12, 31), region=360100),
        _target("nation", date(2023, 1, 1), date(2023, 12, 31), region=100000),
        _target("other-province", date(2023, 1, 1), date(2023, 12, 31), region=110000),
    ]
    assert [t.id for t in targets_in(targets, 360000, *q3)] == [
        "ends-on-first-day",
        "year-2023",
        "starts-on-last-day",
        "city-2025",
        "county-2023",
        "other-city",
    ]
    # a city's bulletin: its own targets and its counties', in force
    assert [t.id for t in targets_in(targets, 360700, *q3)] == ["city-2025", "county-2023"]
    assert targets_in(targets, 360000, date(2021, 6, 1), date(2021, 6, 30)) == []


@pytest.mark.parametrize(
    ("value", "unit", "top", "label"),
    [
        (14_000, "count", None, "14,000"),
        (12_500, "count", 17_500, "12,500"),
        (0, "count", 17_500, "0"),
        (-2_500, "count", 17_500, "-2,500"),
        (1.75, "ratio", None, "1.75"),
        (0.30000000000000004, "ratio", None, "0.3"),
        (50_000, "count", 150_000, "5万"),
        (125_000, "count", 150_000, "12.5万"),
        (2_500_000, "count", 20_000_000, "250万"),
        (30_000_000, "count", 45_000_000, "3,000万"),
        (400_000_000, "count", 450_000_000, "4亿"),
        (1_250_000_000, "count", 1_500_000_000, "12.5亿"),
        (55.5, "%", None, "55.5%"),
        (100, "%", None, "100%"),
    ],
)
def test_axis_ticks_are_plain_numbers_in_wan_or_yi(value: float, unit: str, top: float | None, label: str) -> None:
    assert _axis_value(value, unit, top) == label


def _progress(indicator: str, unit: str, actual: float, goal: float) -> Progress:
    return Progress(
        target_id="t",
        title="t",
        source="",
        indicator=indicator,
        unit=unit,
        region=360000,
        operator=None,
        comparator=">=",
        goal=goal,
        baseline=0.0,
        actual=actual,
        expected=actual * 1.1,
        projected=actual * 1.3,
        gap=goal - actual,
        status="on_track",
        as_of=datetime(2023, 9, 30, 23, 59, tzinfo=PLAN_TZ),
        start=date(2023, 1, 1),
        deadline=date(2023, 12, 31),
    )


@pytest.mark.parametrize(("actual", "goal"), [(11_856, 18_000), (3_466_000, 4_000_000), (4.7e8, 6e8), (0.5, 1.7)])
def test_chart_ticks_carry_no_scientific_notation_or_offset(actual: float, goal: float) -> None:
    p = _progress("bs5g_net_new", "count", actual, goal)
    series: list[tuple[datetime, float]] = [
        (datetime(2023, m, 1, tzinfo=PLAN_TZ), actual * m / 9) for m in range(1, 10)
    ]
    section = TargetSection(progress=p, target=_target("t", p.start, p.deadline), coverage=None, data_as_of=None)
    section.series = list(series)
    with style():
        fig = _figure(section, series)
    try:
        fig.canvas.draw()
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert len(labels) >= 3
        assert not any("e" in lb.lower() for lb in labels), labels
        assert ax.yaxis.get_offset_text().get_text() == ""
        assert len({lb[-1] for lb in labels if lb != "0"}) == 1 or all(lb[-1].isdigit() for lb in labels), labels
    finally:
        plt.close(fig)


def test_a_target_without_data_gets_no_chart() -> None:
    p = _progress("bs5g_net_new", "count", 0, 18_000).model_copy(update={"status": "no_data"})
    section = TargetSection(progress=p, target=_target("t", p.start, p.deadline), coverage=None, data_as_of=None)
    assert target_chart(section) is None


def _width(text: str) -> float:
    """Every character one unit wide (CJK or Latin), for the pure tests."""
    return float(len(text))


PARAGRAPH = (
    "目标编号：jx-2023-5g-new；依据：《江西省数字经济发展提升行动方案》（赣数办〔2023〕1号）一、主要目标（数字基座）；"
    "指标：5G基站净增数（个）；期限：2023年1月1日至2023年12月31日。期末实际11,856，序时应达13,463，"
    "按近90天趋势预测期限末为17,028，目标≥18,000。数据覆盖：11/11个设区市；数据截至：2023年9月30日。"
    "差距主要来自设区市：吉安市（28.4%）、上饶市（15.0%）、南昌市（13.3%）。“打造30个5G+文化旅游应用标杆”！"
)


@pytest.mark.parametrize("width", range(6, 41))
def test_kinsoku_no_line_starts_with_closing_punctuation(width: int) -> None:
    lines = kinsoku_lines(PARAGRAPH, width, _width)
    assert "".join(lines) == PARAGRAPH  # nothing lost (the paragraph has no spaces)
    for i, line in enumerate(lines):
        assert line and _width(line) <= width, (width, line)
        assert line[0] not in NO_LINE_START, (width, i, line)
        assert line[-1] not in NO_LINE_END, (width, i, line)
    # Latin runs that fit on a line (with the punctuation glued to them) stay whole: ids, dates, figures
    if width >= 16:
        for run in ("jx-2023-5g-new", "11,856", "13,463", "18,000"):
            assert any(run in line for line in lines), (width, run)


def test_kinsoku_examples() -> None:
    assert kinsoku_lines("其中已完成3项、进度正常6项", 7, _width) == ["其中已完成3", "项、进度正常6", "项"]
    assert kinsoku_lines("截至期末（2023年）。", 6, _width) == ["截至期末", "（2023", "年）。"]
    # a glued unit wider than the line is cut where neither piece breaks the rule
    assert kinsoku_lines("南昌市（13.3%）、", 6, _width) == ["南昌市", "（13.", "3%）、"]
    # a first-line indent of two characters; spaces at a break are dropped; a run longer than a line is cut
    assert kinsoku_lines("数值与 infrawatch status 一致。", 10, _width, indent=2) == [
        "数值与",
        "infrawatch",
        "status 一致。",
    ]
    assert kinsoku_lines("abcdefghijkl，m", 5, _width) == ["abcde", "fghij", "kl，m"]
    assert kinsoku_lines("", 5, _width) == [""]
    assert kinsoku_lines("甲\n乙", 5, _width) == ["甲", "乙"]


@pytest.mark.parametrize(
    ("lines", "room", "at"),
    [(5, 9, None), (5, 5, None), (5, 3, 3), (5, 4, 3), (3, 2, 0), (2, 1, 0), (1, 0, 0), (6, 5, 4), (4, 0, 0)],
)
def test_a_paragraph_never_leaves_one_line_alone_on_a_page(lines: int, room: int, at: int | None) -> None:
    assert _page_break_at(lines, room) == at


def test_pdf_lines_stay_inside_the_margins_and_never_start_with_closing_punctuation(tmp_path: Path) -> None:
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    try:
        pdf = render_pdf([Block("h1", "一、总体情况"), *[Block("p", PARAGRAPH * 2)] * 3], "测试")
    except NoCjkFont:
        pytest.skip("no CJK font")
    path = tmp_path / "t.pdf"
    path.write_bytes(pdf)
    subprocess.run([pdftotext, "-bbox-layout", str(path), str(tmp_path / "t.html")], check=True)
    html = (tmp_path / "t.html").read_text(encoding="utf-8")
    lines = re.findall(r'<line xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">(.*?)</line>', html, re.S)
    assert len(lines) > 20
    mm = 72 / 25.4
    left, right = 25 * mm, (210 - 22) * mm  # the margins render_pdf sets
    for x_min, x_max, words in lines:
        text = "".join(re.findall(r">([^<]*)</word>", words))
        assert float(x_min) >= left - 0.5 and float(x_max) <= right, (x_min, x_max, text)
        assert text[0] not in NO_LINE_START, text


@pytest.fixture
def font_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set INFRAWATCH_BULLETIN_FONT for this test (the settings and the font found are cached per process)."""

    def use(value: str) -> None:
        monkeypatch.setenv("INFRAWATCH_BULLETIN_FONT", value)
        get_settings.cache_clear()
        find_cjk_font.cache_clear()

    yield use
    monkeypatch.delenv("INFRAWATCH_BULLETIN_FONT", raising=False)
    get_settings.cache_clear()
    find_cjk_font.cache_clear()


def test_the_bulletin_font_is_the_setting_and_a_blank_one_means_the_system_fonts(
    font_setting: Callable[[str], None], tmp_path: Path
) -> None:
    plain = tmp_path / "plain.ttf"
    plain.write_bytes(b"not a font with Chinese glyphs")
    font_setting(str(plain))
    assert get_settings().bulletin_font == plain
    with pytest.raises(NoCjkFont, match=re.escape(str(plain))):
        find_cjk_font()
    font_setting("  ")
    assert get_settings().bulletin_font is None
    try:
        system = find_cjk_font()
    except NoCjkFont as exc:
        assert CANDIDATES[0] in str(exc)  # the usual system locations were searched
        return
    assert str(system.path) in CANDIDATES
    font_setting(str(system.path))
    assert find_cjk_font().path == system.path
