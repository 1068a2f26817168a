"""Bulletin periods: parse `2023-09`, `2023-Q3` or `2023`, and say which closed periods are due on a date."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from metrics import parse_as_of
from metrics.timeutil import PLAN_TZ, start_of_day

PeriodKind = Literal["month", "quarter", "year"]
_QUARTER_ZH = {1: "一", 2: "二", 3: "三", 4: "四"}
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar month, quarter or year in plan time (Asia/Shanghai); `end` is its last day."""

    kind: PeriodKind
    label: str
    start: date
    end: date

    @property
    def title_zh(self) -> str:
        if self.kind == "month":
            return f"{self.start.year}年{self.start.month}月"
        if self.kind == "quarter":
            return f"{self.start.year}年第{_QUARTER_ZH[(self.start.month - 1) // 3 + 1]}季度"
        return f"{self.start.year}年"

    @property
    def kind_zh(self) -> str:
        return {"month": "月度", "quarter": "季度", "year": "年度"}[self.kind]

    @property
    def as_of(self) -> datetime:
        """The period end as `infrawatch status --as-of END` reads it (the last instant of the last day)."""
        return parse_as_of(self.end.isoformat())

    @property
    def start_instant(self) -> datetime:
        return start_of_day(self.start)

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return period_ending(self.kind, self.start - timedelta(days=1))


def _month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def period_ending(kind: PeriodKind, day: date) -> Period:
    """The period of `kind` that contains `day`."""
    if kind == "month":
        return Period(
            "month", f"{day.year}-{day.month:02d}", date(day.year, day.month, 1), _month_end(day.year, day.month)
        )
    if kind == "quarter":
        q = (day.month - 1) // 3 + 1
        first = date(day.year, 3 * q - 2, 1)
        return Period("quarter", f"{day.year}-Q{q}", first, _month_end(day.year, 3 * q))
    return Period("year", f"{day.year}", date(day.year, 1, 1), date(day.year, 12, 31))


def parse_period(text: str) -> Period:
    """`2023-09` (a month), `2023-Q3` (a quarter) or `2023` (a year); ValueError saying what is accepted."""
    t = text.strip()
    if m := _MONTH.match(t):
        year, month = int(m[1]), int(m[2])
        if 1 <= month <= 12 and year >= 1970:
            return period_ending("month", date(year, month, 1))
    elif m := _QUARTER.match(t):
        if int(m[1]) >= 1970:
            return period_ending("quarter", date(int(m[1]), 3 * int(m[2]), 1))
    elif (m := _YEAR.match(t)) and int(m[1]) >= 1970:
        return period_ending("year", date(int(m[1]), 1, 1))
    raise ValueError(f"unknown period {text!r}: give a month 2023-09, a quarter 2023-Q3 or a year 2023")


def due_periods(today: date, day_of_month: int, kinds: tuple[PeriodKind, ...] = ("month", "quarter")) -> list[Period]:
    """The latest closed period of each kind whose bulletin is due on `today` (plan date): a period is due
    from day `day_of_month` of the month after it closes."""
    out = []
    for kind in kinds:
        closed = period_ending(kind, period_ending(kind, today).start - timedelta(days=1))
        after = closed.end + timedelta(days=1)
        due_on = date(after.year, after.month, min(day_of_month, _month_end(after.year, after.month).day))
        if today >= due_on:
            out.append(closed)
    return out


def plan_today(now: datetime) -> date:
    return now.astimezone(PLAN_TZ).date()
