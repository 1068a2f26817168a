"""GET /v1/series: an indicator over time for a region and operator scope, from the metrics layer."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from fastapi import APIRouter, Depends, Query

from api.deps import ANY_KEY, db_read_conn, operator_scope
from api.errors import responses
from api.keys import Principal
from api.schemas import (
    OPERATOR_PATTERN,
    Interval,
    PointOut,
    SeriesOut,
    known_indicator,
    known_region,
    series_window,
)
from metrics import indicator_series
from reference.catalogue import INDICATORS

router = APIRouter(prefix="/v1", tags=["read"])


@router.get("/series", response_model=SeriesOut, responses=responses(401, 403, 422, 503), summary="Indicator series")
def get_series(
    indicator: str = Query(description="an indicator id from GET /v1/indicators", max_length=64),
    region: int = Query(360000, description="GB/T 2260 code: 360000 or a city"),
    operator: str | None = Query(None, pattern=OPERATOR_PATTERN, description="one operator; default all"),
    start: datetime | None = Query(None, description="RFC 3339; without offset = Asia/Shanghai"),
    end: datetime | None = Query(None, description="RFC 3339; default now"),
    interval: Interval = Query("1d"),
    principal: Principal = Depends(ANY_KEY),
    conn: psycopg.Connection = Depends(db_read_conn),
) -> SeriesOut:
    """Buckets start in Asia/Shanghai: gauges at each bucket's end, volumes and ratios within each bucket,
    increase indicators (bs5g_new) since `start`. Operator keys read only their own operator."""
    scope = operator_scope(principal, operator)
    known_indicator(indicator)
    known_region(region)
    start_, end_ = series_window(start, end, interval, datetime.now(UTC))
    points = indicator_series(conn, indicator, region=region, operator=scope, start=start_, end=end_, interval=interval)
    return SeriesOut(
        indicator=indicator,
        unit=INDICATORS[indicator].unit,
        region=region,
        operator=scope,
        interval=interval,
        start=start_,
        end=end_,
        points=[PointOut(ts=p.ts, value=p.value) for p in points],
    )
