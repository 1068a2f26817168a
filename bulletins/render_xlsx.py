"""The bulletin's tables as an Excel workbook (openpyxl): targets, city and operator growth rankings,
shortfall shares, late feeds, rejections and reconciliation gaps, one sheet each."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from bulletins.content import Bulletin
from bulletins.labels import indicator_zh, operator_zh, unit_zh
from bulletins.ranking import STATUS_ZH
from bulletins.reconciliation import AXIS_ZH, NO_GAPS_ZH
from metrics.timeutil import PLAN_TZ

_HEAD = Font(bold=True, color="FFFFFF")
_FILL = PatternFill("solid", fgColor="1F4E9C")


def _sheet(ws: Worksheet, headers: list[str], rows: list[list[object]], empty: str) -> None:
    ws.append(headers)
    for c in ws[1]:
        c.font, c.fill, c.alignment = _HEAD, _FILL, Alignment(horizontal="center")
    for r in rows:
        ws.append(r)
    if not rows:
        ws.append([empty])
    for i, h in enumerate(headers, 1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(10, min(40, len(h) * 2 + 4))
    ws.freeze_panes = "A2"


def _naive(dt: object) -> object:
    return dt.astimezone(PLAN_TZ).replace(tzinfo=None) if hasattr(dt, "astimezone") else dt


def render_xlsx(b: Bulletin) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "目标进展"
    _sheet(
        ws,
        [
            "目标编号",
            "目标",
            "状态",
            "期末实际",
            "序时应达",
            "趋势预测",
            "比较",
            "目标值",
            "单位",
            "数据覆盖",
            "数据截至",
            "期限",
        ],
        [
            [
                s.progress.target_id,
                s.target.title.split(" (")[0],
                STATUS_ZH[s.progress.status],
                s.progress.actual,
                s.progress.expected,
                s.progress.projected,
                s.progress.comparator,
                s.progress.goal,
                unit_zh(s.progress.indicator) or s.progress.unit,
                s.coverage,
                _naive(s.data_as_of),
                str(s.progress.deadline),
            ]
            for s in b.targets
        ],
        "本期暂无纳入监测的规划目标",
    )
    for by, title in (("city", "地市增长排名"), ("operator", "运营商增长排名")):
        rows: list[list[object]] = []
        for g in b.growth:
            if g.by == by:
                rows += [
                    [
                        indicator_zh(g.indicator),
                        g.measure,
                        r.rank,
                        r.key,
                        r.name,
                        r.start_value,
                        r.value,
                        r.change,
                        r.rate,
                    ]
                    for r in g.rows
                ]
        _sheet(
            wb.create_sheet(title),
            ["指标", "口径", "名次", "代码", "名称", "期初/上期", "期末/本期", "增长", "增幅"],
            rows,
            "本期无可比较的增长数据",
        )
    short: list[list[object]] = []
    for s in b.targets:
        for who, lags in (("设区市", s.shortfall_cities), ("运营商", s.shortfall_operators)):
            short += [[s.progress.target_id, who, r.rank, r.key, r.name, r.value, r.start_value] for r in lags]
    _sheet(
        wb.create_sheet("差距贡献排名"),
        ["目标编号", "类别", "名次", "代码", "名称", "差距占比", "期末实际"],
        short,
        "本期各目标均无可归因的差距",
    )
    _sheet(
        wb.create_sheet("数据报送"),
        ["运营商", "运营商名称", "指标", "指标名称", "情况", "涉及地区数", "最近数据时间", "逾期天数"],
        [
            [
                f.operator,
                operator_zh(f.operator),
                f.metric,
                indicator_zh(f.metric),
                "断报" if f.state == "silent" else "迟报",
                f.regions,
                _naive(f.last_ts),
                round(f.days_late, 1),
            ]
            for f in b.late_feeds
        ],
        "无迟报、断报",
    )
    _sheet(
        wb.create_sheet("数据拒收"),
        ["运营商", "运营商名称", "收到条数", "拒收条数", "拒收比例"],
        [[r.operator, operator_zh(r.operator), r.received, r.rejected, r.share] for r in b.rejections],
        "本期无拒收记录",
    )
    _sheet(
        wb.create_sheet("对账差异"),
        [
            "指标",
            "指标名称",
            "对账指标",
            "口径",
            "地区",
            "地区名称",
            "运营商",
            "运营商名称",
            "分项",
            "上报总数",
            "分项之和",
            "差异",
            "差异占比",
            "分项报送",
            "分项总数",
        ],
        [
            [
                g.metric,
                indicator_zh(g.metric),
                g.indicator,
                g.basis_zh,
                g.region,
                g.region_name,
                g.operator,
                operator_zh(g.operator),
                AXIS_ZH.get(g.axis, g.axis),
                g.reported,
                g.sum_of_parts,
                g.gap,
                g.gap_share,
                g.parts_reporting,
                g.parts_total,
            ]
            for g in b.reconciliation
        ],
        NO_GAPS_ZH,
    )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
