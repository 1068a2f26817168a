"""GET /v1/reconciliation: reported totals beside the sums of their parts, with the gap and the coverage."""

from __future__ import annotations

from datetime import datetime

import psycopg
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import READER, db_conn
from api.errors import ApiError, responses
from api.keys import Principal
from api.schemas import aware, known_indicator, known_region
from metrics.reconciliation import ReconciliationRow, reconciliation
from metrics.timeutil import now
from reference.regions import PROVINCE

router = APIRouter(prefix="/v1", tags=["read"])


class ReconciliationOut(BaseModel):
    indicator: str
    region: int
    period: str | None
    gaps: list[ReconciliationRow]


@router.get(
    "/reconciliation",
    response_model=ReconciliationOut,
    responses=responses(401, 403, 422, 503),
    summary="Reconciliation gaps",
)
def get_reconciliation(
    indicator: str = Query(description="an indicator id from GET /v1/indicators", max_length=64),
    region: int = Query(PROVINCE, description="GB/T 2260 code at any level; its regions below are included"),
    period: str | None = Query(None, description="2023, 2023-09 or 2023-Q3 (its last day); default now"),
    as_of: datetime | None = Query(None, description="an instant instead of a period"),
    _principal: Principal = Depends(READER),
    conn: psycopg.Connection = Depends(db_conn),
) -> ReconciliationOut:
    """Every reported total in the region and below that sits beside a sum of its parts (child regions,
    or operators for the `all` figure), largest gap first. Viewer and admin keys."""
    known_indicator(indicator)
    known_region(region)
    try:
        rows = reconciliation(
            conn,
            indicator,
            region=region,
            period=period,
            as_of=None if period else (aware(as_of, "as_of") or now()),
        )
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return ReconciliationOut(indicator=indicator, region=region, period=period, gaps=rows)
