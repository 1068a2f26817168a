"""A target's chart as PNG (matplotlib, Agg): the monthly actual, the expected path, the projection to the
deadline and the goal."""

from __future__ import annotations

import io
from contextlib import AbstractContextManager
from datetime import datetime
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter

from bulletins.content import TargetSection
from bulletins.fonts import NoCjkFont, find_cjk_font
from bulletins.labels import indicator_zh, unit_zh
from metrics.timeutil import PLAN_TZ, end_of_day, start_of_day

WIDTH_IN, HEIGHT_IN, DPI = 6.4, 2.6, 150


@lru_cache(maxsize=1)
def _family() -> str | None:
    """The CJK font registered with matplotlib (every text of a chart uses it); None without one."""
    try:
        path = str(find_cjk_font().path)
    except NoCjkFont:
        return None
    font_manager.fontManager.addfont(path)
    return FontProperties(fname=path).get_name()


def _plain(v: float, decimals: int = 6) -> str:
    """A number with thousands grouping and no trailing zeros, never in scientific notation."""
    text = f"{v:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _axis_value(v: float, unit: str = "", top: float | None = None) -> str:
    """A tick label as Chinese documents print figures, never in scientific notation (1e6) or with an
    offset: in 亿 when the axis reaches 100,000,000, in 万 when it reaches 100,000, else the number itself
    with thousands grouping. `top` is the axis's largest absolute value (so all its ticks share a scale)."""
    if unit == "%":
        return _plain(v, 2) + "%"
    top = abs(v) if top is None else abs(top)
    if top >= 100_000_000:
        return _plain(v / 100_000_000, 4) + "亿"
    if top >= 100_000:
        return _plain(v / 10_000, 2) + "万"
    return _plain(v, 4)


def target_chart(section: TargetSection) -> bytes | None:
    """PNG of the target's course; None when there is nothing to draw (a target without data)."""
    p = section.progress
    if p.status == "no_data":
        return None
    pts = [(t, v) for t, v in section.series if v is not None]
    if not pts and p.actual is None:
        return None
    with style():
        return _draw(section, pts)


def style() -> AbstractContextManager[None]:
    """The charts' matplotlib settings: the CJK font for every text (so no glyph is a box), 8 pt."""
    family = _family()
    return plt.rc_context({"font.family": [family, "DejaVu Sans"] if family else ["DejaVu Sans"], "font.size": 8})


def _draw(section: TargetSection, pts: list[tuple[datetime, float]]) -> bytes:
    fig = _figure(section, pts)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()
    finally:
        plt.close(fig)


def _figure(section: TargetSection, pts: list[tuple[datetime, float]]) -> Figure:
    """The chart's figure (the caller closes it)."""
    p = section.progress
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        # each monthly value is drawn at its month's end
        if pts:
            xs = _x(*[_month_end(t) for t, _ in pts])
            ax.plot(
                xs, [v for _, v in pts], marker="o", markersize=3, linewidth=1.6, color="#1f4e9c", label="实际值(月度)"
            )
        as_of = p.as_of.astimezone(PLAN_TZ)
        t0, t1 = start_of_day(p.start), end_of_day(p.deadline)
        if p.baseline is not None and p.goal is not None and p.expected is not None:
            ax.plot(
                _x(t0, min(as_of, t1), t1),
                [p.baseline, p.expected, p.goal],
                color="#7f7f7f",
                linewidth=1.1,
                linestyle="-",
                label="序时进度(应达)",
            )
        if p.actual is not None:
            ax.plot(
                _x(min(as_of, t1)),
                [p.actual],
                marker="D",
                markersize=5,
                color="#c00000",
                linestyle="none",
                label="期末实际",
            )
            if p.projected is not None and as_of < t1:
                ax.plot(
                    _x(as_of, t1),
                    [p.actual, p.projected],
                    color="#c55a11",
                    linestyle="--",
                    linewidth=1.2,
                    label="趋势预测",
                )
        if p.goal is not None:
            ax.axhline(p.goal, color="#548235", linestyle=":", linewidth=1.2, label="目标值")
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _pos: _axis_value(v, p.unit, max(abs(y) for y in ax.get_ylim())))
        )
        locator = mdates.AutoDateLocator(tz=PLAN_TZ, minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m", tz=PLAN_TZ))
        ax.set_xlim(float(mdates.date2num(t0)), float(mdates.date2num(t1)))
        ax.grid(True, linewidth=0.3, alpha=0.6)
        ax.tick_params(labelsize=7)
        unit = unit_zh(p.indicator)
        ax.set_title(f"{indicator_zh(p.indicator)}" + (f"（{unit}）" if unit else ""))
        ax.legend(fontsize=7, loc="best", frameon=False, ncol=3)
        fig.autofmt_xdate(rotation=0, ha="center")
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig


def _x(*dts: datetime) -> list[float]:
    return [float(mdates.date2num(d)) for d in dts]


def _month_end(bucket_start: datetime) -> datetime:
    local = bucket_start.astimezone(PLAN_TZ)
    nxt = local.replace(year=local.year + (local.month == 12), month=local.month % 12 + 1, day=1)
    return nxt
