"""Plan time (INFRAWATCH_TIMEZONE, default Asia/Shanghai): dates and instants, bucket boundaries for 1h / 1d / 1mo series."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from core.planzone import plan_tz

PLAN_TZ = plan_tz()  # INFRAWATCH_TIMEZONE
Interval = Literal["1h", "1d", "1mo"]
EPSILON = timedelta(microseconds=1)


def aware(dt: datetime) -> datetime:
    """A naive datetime is taken in plan time (Asia/Shanghai)."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=PLAN_TZ)


def start_of_day(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=PLAN_TZ)


def end_of_day(d: date) -> datetime:
    """The last instant of a plan date (23:59:59.999999 Asia/Shanghai)."""
    return start_of_day(d + timedelta(days=1)) - EPSILON


def start_of_year(dt: datetime) -> datetime:
    local = aware(dt).astimezone(PLAN_TZ)
    return datetime(local.year, 1, 1, tzinfo=PLAN_TZ)


def parse_as_of(text: str) -> datetime:
    """`YYYY-MM-DD` → the end of that day in Asia/Shanghai; a date-time (naive = Asia/Shanghai) as given."""
    text = text.strip()
    if len(text) == 10:
        return end_of_day(date.fromisoformat(text))
    return aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def now() -> datetime:
    return datetime.now(UTC)


def epoch(dt: datetime) -> float:
    return aware(dt).timestamp()


def floor_bucket(dt: datetime, interval: Interval) -> datetime:
    local = aware(dt).astimezone(PLAN_TZ)
    if interval == "1h":
        return local.replace(minute=0, second=0, microsecond=0)
    if interval == "1d":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_bucket(b: datetime, interval: Interval) -> datetime:
    if interval == "1h":
        return b + timedelta(hours=1)
    if interval == "1d":
        return (b + timedelta(days=1)).replace(tzinfo=PLAN_TZ)
    y, m = (b.year + 1, 1) if b.month == 12 else (b.year, b.month + 1)
    return b.replace(year=y, month=m, day=1)


def buckets(start: datetime, end: datetime, interval: Interval, limit: int = 100_000) -> list[datetime]:
    """Bucket starts (Asia/Shanghai) of every bucket overlapping [start, end)."""
    if interval not in ("1h", "1d", "1mo"):
        raise ValueError(f"interval must be 1h, 1d or 1mo, not {interval!r}")
    out: list[datetime] = []
    b = floor_bucket(start, interval)
    end = aware(end)
    while b < end:
        out.append(b)
        if len(out) > limit:
            raise ValueError(f"too many {interval} buckets between {start} and {end}; use a coarser interval")
        b = next_bucket(b, interval)
    return out


def month_ends(start: date, count: int) -> list[datetime]:
    """End instants of `count` consecutive plan months, the first being start's month."""
    out = []
    b = floor_bucket(start_of_day(start), "1mo")
    for _ in range(count):
        b = next_bucket(b, "1mo")
        out.append(b)
    return out
