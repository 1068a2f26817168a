"""Feed freshness: per operator, metric and region, when the last observation was stamped and received,
and whether the feed is stale (silent longer than twice the metric's cadence).

The stale rule is published once, in SQL (`iw_feed_stale()`, migration 0150_board_readers.sql), and read
from there by `feed_freshness` (the API, the console) and by the feeds board, so every reader calls a feed
stale at the same instant. `STALE_FACTOR` (metrics.verdict: the one staleness factor, also of the progress data and the silent-feed alerts) and `is_stale` name the same rule for texts and pure callers;
tests/test_board_readers.py keeps them equal to the SQL function on its edge cases.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from pydantic import BaseModel

from metrics.db import owns_transaction
from metrics.timeutil import aware
from metrics.timeutil import now as _now
from metrics.verdict import STALE_FACTOR


class FeedFreshness(BaseModel):
    operator: str
    metric: str
    region: int
    last_ts: datetime
    last_received_at: datetime
    age_s: float
    cadence_s: int
    stale: bool


def is_stale(age_s: float, cadence_s: int) -> bool:
    """A feed is stale when its newest observation is older than twice its cadence (as iw_feed_stale())."""
    return age_s > STALE_FACTOR * cadence_s


@owns_transaction
def feed_freshness(
    conn: psycopg.Connection, now: datetime | None = None, operator: str | None = None
) -> list[FeedFreshness]:
    """Every (operator, metric, region) feed seen, as iw_feed_freshness() publishes it at `now`."""
    at = aware(now or _now())
    sql = (
        "SELECT operator, metric, region, last_ts, last_received_at, age_s, cadence_s, stale FROM iw_feed_freshness(%s)"
    )
    params: list[object] = [at]
    if operator is not None:
        sql += " WHERE operator = %s"
        params.append(operator)
    rows = conn.execute(sql + ' ORDER BY operator COLLATE "C", metric COLLATE "C", region', params).fetchall()
    return [
        FeedFreshness(
            operator=op,
            metric=metric,
            region=region,
            last_ts=last_ts,
            last_received_at=received,
            age_s=age,
            cadence_s=cadence,
            stale=stale,
        )
        for op, metric, region, last_ts, received, age, cadence, stale in rows
    ]
