"""Calendar arithmetic of the simulation: cadence ticks, plan-year fractions and ts text, all in epoch µs.

Statistics are dated by the conventions of docs/interface.md §4: a monthly figure at 00:00 local time on the last
day of its month (the statistical period end), a daily figure at 00:00 after the day it covers.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

US = 1_000_000
DAY_US = 86400 * US
_EPOCH_DATE = date(1970, 1, 1)
_SPAN = re.compile(r"^(\d+)\s*(s|m|h|d)$")


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a series reports: 'monthly' (month end), 'daily' (midnight) or every `seconds`."""

    kind: str  # "monthly", "daily" or "every"
    seconds: int = 0

    @property
    def nominal_s(self) -> int:
        return {"monthly": 31 * 86400, "daily": 86400}.get(self.kind, self.seconds)


def parse_cadence(value: str | int) -> Cadence:
    """'monthly', 'daily', a number of seconds, or '5m' / '1h' / '30s' / '2d'."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"cadence must be positive seconds, got {value}")
        return Cadence("every", value)
    text = str(value).strip().lower()
    if text in ("monthly", "daily"):
        return Cadence(text)
    m = _SPAN.match(text)
    if not m:
        raise ValueError(f"cadence {value!r} is not 'monthly', 'daily', seconds or a span like '5m', '1h'")
    n = int(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
    if n <= 0:
        raise ValueError(f"cadence {value!r} must be positive")
    return Cadence("every", n)


def local_midnight_us(d: date, tz: ZoneInfo) -> int:
    return to_us(datetime(d.year, d.month, d.day, tzinfo=tz))


def to_us(dt: datetime) -> int:
    return int(dt.timestamp()) * US + dt.microsecond


def us_to_local(us: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(us // US, tz) + timedelta(microseconds=us % US)


def month_end_us(year: int, month: int, tz: ZoneInfo) -> int:
    """00:00 local time on the last day of the month (the statistical period end)."""
    return local_midnight_us(date(year, month, calendar.monthrange(year, month)[1]), tz)


def ticks(cadence: Cadence, start_us: int, end_us: int, tz: ZoneInfo) -> np.ndarray:
    """Every report time of the cadence in [start_us, end_us], ascending (int64 µs)."""
    if end_us < start_us:
        return np.empty(0, dtype=np.int64)
    first = us_to_local(start_us, tz).date()
    last = us_to_local(end_us, tz).date()
    out: list[int] = []
    if cadence.kind == "monthly":
        y, m = first.year, first.month
        while (y, m) <= (last.year, last.month):
            t = month_end_us(y, m, tz)
            if start_us <= t <= end_us:
                out.append(t)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return np.asarray(out, dtype=np.int64)
    if cadence.kind == "daily":
        n = (last - first).days + 1
        days = [local_midnight_us(first + timedelta(days=i), tz) for i in range(n)]
        arr = np.asarray(days, dtype=np.int64)
        return arr[(arr >= start_us) & (arr <= end_us)]
    step = cadence.seconds * US
    t0 = -(-start_us // step) * step
    return np.arange(t0, end_us + 1, step, dtype=np.int64)


@lru_cache(maxsize=1 << 14)
def utc_offset_text(tz: ZoneInfo, at_us: int) -> str:
    off = us_to_local(at_us, tz).utcoffset() or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_ts(ts_us: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """RFC 3339 text with the zone's offset, e.g. 2023-06-30T00:00:00+08:00 (vectorised).

    The offset is taken per distinct day, so zones with daylight saving would switch at midnight;
    Asia/Shanghai has a fixed +08:00.
    """
    ts_us = np.asarray(ts_us, dtype=np.int64)
    if ts_us.size == 0:
        return np.empty(0, dtype=object)
    day = ts_us // DAY_US
    uniq, inv = np.unique(day, return_inverse=True)
    offsets_s = np.array([_offset_s(tz, int(d) * DAY_US) for d in uniq], dtype=np.int64)[inv]
    local = (ts_us // US + offsets_s).astype("datetime64[s]")
    text = np.datetime_as_string(local, unit="s").astype(object)
    suffix = np.array([utc_offset_text(tz, int(d) * DAY_US) for d in uniq], dtype=object)[inv]
    return text + suffix


@lru_cache(maxsize=1 << 14)
def _offset_s(tz: ZoneInfo, us: int) -> int:
    off = us_to_local(us, tz).utcoffset() or timedelta(0)
    return int(off.total_seconds())


def local_parts(ts_us: np.ndarray, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day-of-year 0-based, weekday Mon=0) of each ts in local time."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    if ts_us.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, e, e
    day = ts_us // DAY_US
    uniq = np.unique(day)
    offsets = {int(d): _offset_s(tz, int(d) * DAY_US) for d in uniq}
    off = np.array([offsets[int(d)] for d in day], dtype=np.int64) if len(uniq) > 1 else offsets[int(uniq[0])]
    local_days = ((ts_us // US + off) // 86400).astype("datetime64[D]")
    years = local_days.astype("datetime64[Y]")
    months = local_days.astype("datetime64[M]")
    year = years.astype(np.int64) + 1970
    month = (months - years).astype(np.int64) + 1
    doy = (local_days - years.astype("datetime64[D]")).astype(np.int64)
    weekday = (local_days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    return year, month, doy, weekday


def parse_instant(value: str | date | datetime, tz: ZoneInfo, *, end_of_day: bool = False) -> int:
    """A date ('2023-12-31', 00:00 local, or 24:00 with end_of_day), a month ('2023-12', its month end) or a date-time."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=tz)
        return to_us(dt)
    if isinstance(value, date):
        return local_midnight_us(value + timedelta(days=1 if end_of_day else 0), tz)
    text = str(value).strip()
    m = re.match(r"^(\d{4})-(\d{1,2})$", text)
    if m:
        return month_end_us(int(m[1]), int(m[2]), tz)
    if re.match(r"^\d{4}-\d{1,2}-\d{1,2}$", text):
        return parse_instant(date.fromisoformat(text), tz, end_of_day=end_of_day)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date, month or date-time (e.g. 2023-12-31, 2023-12, 2023-12-31T00:00:00+08:00)"
        ) from None
    return parse_instant(dt, tz)
