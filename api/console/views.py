"""Pure presentation helpers of the web console: how numbers, statuses, ages and feed grids read on a page."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from metrics.timeutil import PLAN_TZ

STATUS_WORDS: dict[str, str] = {
    "achieved": "achieved",
    "on_track": "on track",
    "at_risk": "at risk",
    "off_track": "off track",
    "missed": "missed",
    "no_data": "no data",
}

#: CSS class (and so colour) per status: good, warn, bad, none.
STATUS_TONES: dict[str, str] = {
    "achieved": "good",
    "on_track": "good",
    "at_risk": "warn",
    "off_track": "bad",
    "missed": "bad",
    "no_data": "none",
}

_UNIT_SUFFIX = {"count": "", "0/1": "", "%": "%", "ratio": ""}


def status_word(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " "))


def status_tone(status: str) -> str:
    return STATUS_TONES.get(status, "none")


def format_number(value: float | None, unit: str = "count") -> str:
    """A figure as a person reads it: thousands separators, decimals only where the unit has them."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if unit in ("count", "persons", "0/1"):
        text = f"{value:,.0f}"
    elif unit == "%":
        text = f"{value:,.1f}"
    elif unit == "ratio":
        text = f"{value:,.2f}"
    else:  # GB, kWh, ...
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return "0" if text in ("-0", "-0.0", "-0.00") else text


def format_value(value: float | None, unit: str = "count") -> str:
    """A figure with its unit: `1,200`, `41.5%`, `1.35`, `12,000 GB`, `3,600 persons`."""
    text = format_number(value, unit)
    if text == "—":
        return text
    suffix = _UNIT_SUFFIX.get(unit, f" {unit}")
    return text + suffix


def format_age(seconds: float | None) -> str:
    """An age in the largest sensible unit: `40 s`, `12 min`, `5 h`, `3 d`."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def format_time(dt: datetime | None) -> str:
    """An instant in plan time (Asia/Shanghai), to the minute."""
    if dt is None:
        return "—"
    return dt.astimezone(PLAN_TZ).strftime("%Y-%m-%d %H:%M")


def format_scope(scope: dict[str, object]) -> str:
    """An alert's scope as `operator cmcc, region 360100`."""
    return ", ".join(f"{k} {v}" for k, v in scope.items() if v not in (None, "")) or "—"


# -- feed freshness grid -----------------------------------------------------------------------------------


@dataclass
class FeedCell:
    """One operator × metric: its regions, how many are stale, and the oldest region's age."""

    regions: int = 0
    stale_regions: int = 0
    newest_ts: datetime | None = None
    oldest_age_s: float = 0.0
    cadence_s: int = 0

    @property
    def stale(self) -> bool:
        return self.stale_regions > 0


@dataclass
class FeedGrid:
    operators: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], FeedCell] = field(default_factory=dict)

    def cell(self, operator: str, metric: str) -> FeedCell | None:
        return self.cells.get((operator, metric))

    @property
    def stale_count(self) -> int:
        return sum(1 for c in self.cells.values() if c.stale)


class _Feed(Protocol):
    """The fields of metrics.FeedFreshness this grid reads."""

    operator: str
    metric: str
    last_ts: datetime
    age_s: float
    cadence_s: int
    stale: bool


def freshness_grid(feeds: Iterable[_Feed]) -> FeedGrid:
    """Fold per-region feeds into an operator × metric grid; a cell is stale when any of its regions is."""
    grid = FeedGrid()
    for f in feeds:
        cell = grid.cells.setdefault((f.operator, f.metric), FeedCell(cadence_s=f.cadence_s))
        cell.regions += 1
        cell.stale_regions += int(f.stale)
        cell.oldest_age_s = max(cell.oldest_age_s, f.age_s)
        if cell.newest_ts is None or f.last_ts > cell.newest_ts:
            cell.newest_ts = f.last_ts
    grid.operators = sorted({op for op, _ in grid.cells})
    grid.metrics = sorted({m for _, m in grid.cells})
    return grid
