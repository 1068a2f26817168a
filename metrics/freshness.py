"""Feed freshness: per operator, metric and region, when the last observation was stamped and received,
and whether the feed is stale (silent longer than twice the metric's cadence)."""

from __future__ import annotations

from datetime import datetime

import psycopg
from pydantic import BaseModel

from metrics.db import owns_transaction
from metrics.timeutil import aware
from metrics.timeutil import now as _now
from reference.catalogue import METRICS


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
    """A feed is stale when its newest observation is older than twice its cadence."""
    return age_s > 2 * cadence_s


@owns_transaction
def feed_freshness(
    conn: psycopg.Connection, now: datetime | None = None, operator: str | None = None
) -> list[FeedFreshness]:
    """Every (operator, metric, region) feed seen, oldest first within operator and metric order."""
    at = aware(now or _now())
    sql = "SELECT operator, metric, region, last_ts, last_received_at FROM feed_freshness"
    params: list[object] = []
    if operator is not None:
        sql += " WHERE operator = %s"
        params.append(operator)
    rows = conn.execute(sql + " ORDER BY operator, metric, region", params).fetchall()
    out = []
    for op, metric, region, last_ts, received in rows:
        cadence = METRICS[metric].cadence_s if metric in METRICS else 86400
        age = max(0.0, (at - last_ts).total_seconds())
        out.append(
            FeedFreshness(
                operator=op,
                metric=metric,
                region=region,
                last_ts=last_ts,
                last_received_at=received,
                age_s=age,
                cadence_s=cadence,
                stale=is_stale(age, cadence),
            )
        )
    return out
