"""The plans' time zone (INFRAWATCH_TIMEZONE, default Asia/Shanghai): naive dates and timestamps are read in
it, and days, months and years are cut in it. It must keep one UTC offset all year (no daylight saving), so
that a plan day is always 24 hours and year boundaries can be found by arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.settings import get_settings


class PlanZoneError(ValueError):
    """INFRAWATCH_TIMEZONE names no usable zone."""


def _checked(name: str) -> tuple[ZoneInfo, int]:
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanZoneError(
            f"INFRAWATCH_TIMEZONE={name!r} is not an IANA time zone; use a name such as Asia/Shanghai"
        ) from None
    offsets = set()
    for year in (2000, 2020, 2030):
        for month in (1, 7):
            offset = datetime(year, month, 1, tzinfo=UTC).astimezone(zone).utcoffset()
            assert offset is not None
            offsets.add(int(offset.total_seconds()))
    if len(offsets) != 1:
        raise PlanZoneError(
            f"INFRAWATCH_TIMEZONE={name!r} changes its UTC offset during the year (daylight saving); the plans' "
            "time zone must keep one offset (Asia/Shanghai, Asia/Urumqi, UTC …)"
        )
    return zone, offsets.pop()


@lru_cache(maxsize=1)
def _zone() -> tuple[ZoneInfo, int]:
    return _checked(get_settings().timezone)


def plan_tz() -> ZoneInfo:
    """The plans' time zone."""
    return _zone()[0]


def plan_tz_name() -> str:
    """Its IANA name (for SQL `AT TIME ZONE` and Grafana's board time zone)."""
    return _zone()[0].key


def plan_offset_s() -> int:
    """Its fixed UTC offset in seconds (28,800 for Asia/Shanghai)."""
    return _zone()[1]
