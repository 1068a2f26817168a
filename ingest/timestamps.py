"""Timestamp rules of docs/interface.md §4 and §6: RFC 3339 for JSON, and the looser spreadsheet forms for CSV.

Pure functions: text in, UTC epoch microseconds (or a reason) out.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from core.planzone import plan_tz_name

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTH = re.compile(r"^(\d{4})[-/](\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})[-/ ]?[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_HAS_OFFSET = re.compile(r"(Z|z|[+-]\d{2}(:?\d{2})?)$")


class TimestampError(ValueError):
    pass


def to_us(dt: datetime) -> int:
    """UTC epoch microseconds of an aware datetime (exact)."""
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception:
        raise TimestampError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)") from None


def parse_rfc3339(text: str) -> int:
    """An RFC 3339 date-time with an offset (JSON payloads). Naive times are refused."""
    if not isinstance(text, str):
        raise TimestampError(f"ts must be a string, got {type(text).__name__}")
    s = text.strip()
    if "T" not in s and "t" not in s and " " not in s:
        raise TimestampError(f"ts {text!r} is not an RFC 3339 date-time (e.g. 2023-06-30T00:00:00+08:00)")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise TimestampError(f"ts {text!r} is not an RFC 3339 date-time (e.g. 2023-06-30T00:00:00+08:00)") from None
    if dt.tzinfo is None:
        raise TimestampError(f"ts {text!r} has no UTC offset; add one, e.g. +08:00 or Z")
    return to_us(dt)


def month_end(year: int, month: int, tz: str) -> int:
    """00:00 local time on the last day of the month: the statistical period end."""
    last = calendar.monthrange(year, month)[1]
    return to_us(datetime(year, month, last, tzinfo=zone(tz)))


def parse_csv_ts(text: str, tz: str | None = None) -> int:
    """Any ts form a spreadsheet may hold: RFC 3339, naive date-time or date (in tz), or a period: a month
    YYYY-MM, a quarter YYYY-Qn or a year YYYY, each meaning 00:00 of its last day (the statistical period end).
    `tz` None: the plans' time zone (INFRAWATCH_TIMEZONE)."""
    tz = tz or plan_tz_name()
    s = str(text).strip()
    if not s:
        raise TimestampError("ts is empty")
    try:
        if m := _MONTH.match(s):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise ValueError
            return month_end(year, month, tz)
        if m := _QUARTER.match(s):
            return month_end(int(m[1]), 3 * int(m[2]), tz)
        if m := _YEAR.match(s):
            return month_end(int(m[1]), 12, tz)
        if m := _DATE.match(s):
            return to_us(datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=zone(tz)))
        dt = datetime.fromisoformat(s.replace("/", "-"))
    except ValueError:
        raise TimestampError(
            f"ts {text!r} is not a date-time, date, month, quarter or year"
            " (e.g. 2023-06-30T00:00:00+08:00, 2023-06-30, 2023-06, 2023-Q3, 2023)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone(tz))
    return to_us(dt)
