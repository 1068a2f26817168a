"""Feeds of a bulletin period: which operators' metrics were late or silent at the period end, and each
operator's rejected share of what it sent during the period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from metrics.freshness import is_stale
from reference.catalogue import METRICS
from reference.operators import ADMIN_OPERATOR
from reference.regions import PROVINCE, cities_of

#: How far back a feed's last report is looked for; older feeds count as gone, not as late.
LOOKBACK = timedelta(days=400)

# Each series' newest reading is one probe of the points' primary key (series_id, ts); a feed's is the newest
# of its series (all its entities).
_LAST_REPORTS = """
SELECT s.operator, s.metric, s.region, max(o.last_ts) AS last_ts
FROM series s
CROSS JOIN LATERAL (
    SELECT max(ts) AS last_ts FROM observation_point
    WHERE series_id = s.id AND ts <= %(until)s AND ts > %(since)s
) o
WHERE o.last_ts IS NOT NULL AND s.region = ANY(%(regions)s)
GROUP BY s.operator, s.metric, s.region
ORDER BY s.operator, s.metric, s.region
"""


@dataclass(frozen=True, slots=True)
class FeedReport:
    """One feed (operator, metric, region) and its newest observation at or before the period end."""

    operator: str
    metric: str
    region: int
    last_ts: datetime


@dataclass(frozen=True, slots=True)
class LateFeed:
    """An operator's metric overdue at the period end: late (older than its cadence) or silent (older than
    twice its cadence, the rule freshness uses), over `regions` regions."""

    operator: str
    metric: str
    state: str  # "late" | "silent"
    regions: int
    last_ts: datetime
    days_late: float


@dataclass(frozen=True, slots=True)
class Rejections:
    operator: str
    received: int
    rejected: int

    @property
    def share(self) -> float:
        return self.rejected / self.received if self.received else 0.0


def scope_regions(region: int) -> list[int]:
    return [region, *cities_of(region)] if region == PROVINCE else [region]


def last_reports(conn: psycopg.Connection, until: datetime, region: int = PROVINCE) -> list[FeedReport]:
    """Every feed in the region's scope with its newest observation at or before `until`."""
    rows = conn.execute(
        _LAST_REPORTS, {"until": until, "since": until - LOOKBACK, "regions": scope_regions(region)}
    ).fetchall()
    return [FeedReport(op, m, int(r), ts) for op, m, r, ts in rows]


def late_feeds(reports: list[FeedReport], until: datetime) -> list[LateFeed]:
    """Pure: the operators' metrics overdue at `until`, one row per (operator, metric, state), the most
    overdue first. The administration's own reference series are not feeds."""
    groups: dict[tuple[str, str, str], list[tuple[FeedReport, float]]] = {}
    for f in reports:
        if f.operator == ADMIN_OPERATOR or f.metric not in METRICS:
            continue
        cadence = METRICS[f.metric].cadence_s
        age = (until - f.last_ts).total_seconds()
        if age <= cadence:
            continue
        state = "silent" if is_stale(age, cadence) else "late"
        groups.setdefault((f.operator, f.metric, state), []).append((f, (age - cadence) / 86400))
    out = [
        LateFeed(
            operator=op,
            metric=m,
            state=state,
            regions=len(items),
            last_ts=min(f.last_ts for f, _ in items),
            days_late=max(d for _, d in items),
        )
        for (op, m, state), items in groups.items()
    ]
    out.sort(key=lambda x: (-x.days_late, x.operator, x.metric))
    return out


def rejections(conn: psycopg.Connection, start: datetime, until: datetime) -> list[Rejections]:
    """Per operator, what it sent in [start, until] (by receipt) and how much of it was rejected."""
    rows = conn.execute(
        "SELECT operator, sum(accepted + duplicates + revised + rejected)::bigint, sum(rejected)::bigint"
        " FROM ingest_batch WHERE operator IS NOT NULL AND received_at >= %s AND received_at <= %s"
        " GROUP BY operator ORDER BY operator",
        (start, until),
    ).fetchall()
    return [Rejections(op, int(n), int(r)) for op, n, r in rows if n]
