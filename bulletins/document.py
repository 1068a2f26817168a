"""The bulletin as a sequence of blocks (title, headings, paragraphs, tables, charts), written once in
Chinese and rendered alike to Word and PDF."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from bulletins.charts import target_chart
from bulletins.content import Bulletin
from bulletins.labels import fmt, fmt_share, indicator_zh, operator_zh, quotes_zh, source_zh, title_zh, unit_zh
from bulletins.ranking import STATUS_ZH, summary_sentence
from bulletins.reconciliation import AXIS_ZH, NO_GAPS_ZH, ReconciliationGap
from metrics.timeutil import PLAN_TZ

ISSUER = "江西省通信管理局"
NUMBER_PLACEHOLDER = "赣通〔    〕    号"
NO_DATA_ZH = "本期无监测数据：纳入监测的目标在本期末均无可用的上报数据，以下各表从略。"
NO_TARGETS_ZH = "本期无监测数据：没有规划期覆盖本期的目标，以下各表从略。"
NO_TARGETS_SECTION_ZH = "本期暂无纳入监测的规划目标。"
COMPARATOR_ZH = {">=": "≥", ">": "＞", "<=": "≤", "<": "＜"}
_STATE_ZH = {"late": "迟报", "silent": "断报"}
_SECTIONS = ("一", "二", "三", "四", "五", "六")


@dataclass(slots=True)
class Block:
    kind: str  # title | subtitle | meta | h1 | h2 | p | table | image | note
    text: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    widths: list[float] = field(default_factory=list)  # relative column widths
    image: bytes | None = None


def bulletin_title(b: Bulletin) -> str:
    return f"{b.region_zh}数字基础设施规划目标{b.period.kind_zh}通报"


def _cmp(comparator: str) -> str:
    return COMPARATOR_ZH.get(comparator, comparator)


def _when(dt: datetime) -> str:
    local = dt.astimezone(PLAN_TZ)
    return f"{local.year}年{local.month}月{local.day}日" + (f"{local.hour}时" if local.hour else "")


def _date_zh(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _as_of_zh(b: Bulletin) -> str:
    return _date_zh(b.period.end)


def _reconciled_zh(g: ReconciliationGap) -> str:
    """What the figures of a gap are: the metric's level at the period end, or its volume or increase."""
    return indicator_zh(g.metric) + ("" if g.basis_zh == "期末值" else f"（{g.basis_zh}）")


def blocks(b: Bulletin, *, charts: bool = True) -> list[Block]:
    """The whole bulletin, in order."""
    gen = b.generated_at.astimezone(PLAN_TZ)
    out = [
        Block("meta", NUMBER_PLACEHOLDER),
        Block("title", bulletin_title(b)),
        Block("subtitle", f"（{b.period.title_zh}，数据截至{_as_of_zh(b)}24时）"),
        Block("meta", f"{ISSUER}　　{gen.year}年{gen.month}月{gen.day}日"),
    ]
    n = iter(_SECTIONS)
    out.append(Block("h1", f"{next(n)}、总体情况"))
    out.append(Block("p", summary_sentence(b.counts, b.period.title_zh)))
    if not b.targets:
        out.append(Block("p", NO_TARGETS_ZH))
    elif not b.has_data:
        out.append(Block("p", NO_DATA_ZH))
    if b.targets:
        out.append(
            Block(
                "table",
                headers=["目标", "状态", "期末实际", "序时应达", "趋势预测", "目标值"],
                rows=[
                    [
                        s.progress.target_id,
                        STATUS_ZH[s.progress.status],
                        fmt(s.progress.actual, s.progress.unit),
                        fmt(s.progress.expected, s.progress.unit),
                        fmt(s.progress.projected, s.progress.unit),
                        f"{_cmp(s.progress.comparator)}{fmt(s.progress.goal, s.progress.unit)}",
                    ]
                    for s in b.targets
                ],
                widths=[3.2, 1.4, 1.6, 1.6, 1.6, 1.8],
            )
        )

    out.append(Block("h1", f"{next(n)}、各项目标进展"))
    if not b.targets:
        out.append(Block("p", NO_TARGETS_SECTION_ZH))
    for i, s in enumerate(b.targets, 1):
        p = s.progress
        unit = unit_zh(p.indicator)
        out.append(Block("h2", f"（{i}）{quotes_zh(title_zh(s.target.title, p.target_id))}　【{STATUS_ZH[p.status]}】"))
        facts = [
            f"目标编号：{p.target_id}；依据：{source_zh(p.source)}；指标：{indicator_zh(p.indicator)}"
            + (f"（{unit}）" if unit else "")
            + f"；期限：{_date_zh(p.start)}至{_date_zh(p.deadline)}。",
        ]
        if p.status == "no_data":
            facts.append("本期末该目标范围内暂无上报数据，无法评估进度。")
        else:
            facts.append(
                f"期末实际{fmt(p.actual, p.unit)}，序时应达{fmt(p.expected, p.unit)}，"
                f"按近90天趋势预测期限末为{fmt(p.projected, p.unit)}，目标{_cmp(p.comparator)}{fmt(p.goal, p.unit)}。"
                f"数据覆盖：{s.coverage or '—'}；数据截至：" + (_when(s.data_as_of) if s.data_as_of else "—") + "。"
            )
        for lags, what in ((s.shortfall_cities, "设区市"), (s.shortfall_operators, "运营商")):
            named = [f"{r.name}（{fmt_share(r.value)}）" for r in lags if r.value]
            if named:
                facts.append(f"差距主要来自{what}：" + "、".join(named) + "。")
        out.append(Block("p", "".join(facts)))
        if charts and p.status != "no_data":  # a target without data gets no chart
            png = target_chart(s)
            if png:
                out.append(Block("image", image=png))

    out.append(Block("h1", f"{next(n)}、地市和运营商排名"))
    short = [s for s in b.targets if s.shortfall_cities or s.shortfall_operators]
    if short:
        out.append(Block("p", "按对目标差距的贡献占比排序（仅列出存在差距的目标）："))
        rows = []
        for s in short:
            for who, lags in (("设区市", s.shortfall_cities), ("运营商", s.shortfall_operators)):
                for r in lags:
                    rows.append([s.progress.target_id, who, str(r.rank or "—"), r.name, fmt_share(r.value)])
        out.append(
            Block(
                "table",
                headers=["目标", "类别", "名次", "名称", "差距占比"],
                rows=rows,
                widths=[3.2, 1.2, 0.9, 2.2, 1.5],
            )
        )
    elif b.targets:
        out.append(Block("p", "本期各目标均无可归因的差距。"))
    else:
        out.append(Block("p", "本期暂无纳入监测的规划目标，不作排名。"))
    if b.growth:
        out.append(Block("p", "按本期增长排序（水平类指标为本期增量，占比类指标为较上期变化）："))
        for g in b.growth:
            unit = unit_zh(g.indicator)
            who = "设区市" if g.by == "city" else "运营商"
            out.append(Block("note", f"{indicator_zh(g.indicator)}（{who}，{g.measure}）"))
            out.append(
                Block(
                    "table",
                    headers=[
                        "名次",
                        "名称",
                        "期初/上期",
                        "期末/本期",
                        g.measure + (f"（{unit}）" if unit else ""),
                        "增幅",
                    ],
                    rows=[
                        [
                            str(r.rank or "—"),
                            r.name,
                            fmt(r.start_value, g.unit),
                            fmt(r.value, g.unit),
                            fmt(r.change, g.unit)
                            if g.unit != "%"
                            else (f"{r.change:+.2f}个百分点" if r.change is not None else "—"),
                            fmt_share(r.rate) if g.unit not in ("%", "ratio", "GB/kWh") else "—",
                        ]
                        for r in g.rows
                    ],
                    widths=[0.9, 2.0, 1.8, 1.8, 2.0, 1.2],
                )
            )
    elif b.has_data:
        out.append(Block("p", "本期无可比较的增长数据。"))

    out.append(Block("h1", f"{next(n)}、数据报送情况"))
    if b.late_feeds:
        out.append(
            Block("p", f"截至期末，共{len(b.late_feeds)}项报送迟报或断报（超过报送周期为迟报，超过两个周期为断报）：")
        )
        out.append(
            Block(
                "table",
                headers=["运营商", "指标", "情况", "涉及地区数", "最近数据时间", "逾期天数"],
                rows=[
                    [
                        operator_zh(f.operator),
                        indicator_zh(f.metric),
                        _STATE_ZH[f.state],
                        str(f.regions),
                        f.last_ts.astimezone(PLAN_TZ).strftime("%Y-%m-%d"),
                        f"{f.days_late:.1f}",
                    ]
                    for f in b.late_feeds
                ],
                widths=[1.5, 2.6, 0.9, 1.2, 1.8, 1.1],
            )
        )
    else:
        out.append(Block("p", "截至期末，各运营商数据均按期报送，无迟报、断报。"))
    if b.rejections:
        out.append(Block("p", "本期收到的数据中被拒收的比例："))
        out.append(
            Block(
                "table",
                headers=["运营商", "收到条数", "拒收条数", "拒收比例"],
                rows=[
                    [operator_zh(r.operator), f"{r.received:,}", f"{r.rejected:,}", fmt_share(r.share)]
                    for r in b.rejections
                ],
                widths=[2, 2, 2, 2],
            )
        )
    else:
        out.append(Block("p", "本期未收到经接口或文件上报的数据批次，无拒收记录。"))

    out.append(Block("h1", f"{next(n)}、对账差异"))
    if b.reconciliation:
        out.append(
            Block(
                "p",
                f"截至期末，共{len(b.reconciliation)}处上报总数（本级地区或全行业上报的数字）与分项之和"
                "（下级地区或各运营商上报的数字之和）不一致，按差异绝对值从大到小排列：",
            )
        )
        out.append(
            Block(
                "table",
                headers=["指标", "地区", "运营商", "分项", "上报总数", "分项之和", "差异", "分项报送"],
                rows=[
                    [
                        _reconciled_zh(g),
                        g.region_name,
                        operator_zh(g.operator),
                        AXIS_ZH.get(g.axis, g.axis),
                        fmt(g.reported),
                        fmt(g.sum_of_parts),
                        fmt(g.gap),
                        f"{g.parts_reporting}/{g.parts_total}",
                    ]
                    for g in b.reconciliation
                ],
                widths=[2.4, 1.3, 1.2, 1.7, 1.4, 1.4, 1.1, 1.4],
            )
        )
    else:
        out.append(Block("p", NO_GAPS_ZH))
    out.append(
        Block(
            "meta", f"本通报由 infrawatch 根据监测数据自动生成，数值与 infrawatch status --as-of {b.period.end} 一致。"
        )
    )
    return out
