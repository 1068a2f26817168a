"""GET /v1/alerts (by state; operator keys see their own operator's) and POST /v1/alerts/{id}/ack (admin)."""

from __future__ import annotations

from typing import Literal

import psycopg
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from alerts.store import Alert, acknowledge, list_alerts
from api.deps import ADMIN, ANY_KEY, db_conn
from api.errors import ApiError, responses
from api.keys import Principal

router = APIRouter(prefix="/v1", tags=["alerts"])


class AlertList(BaseModel):
    alerts: list[Alert]


@router.get("/alerts", response_model=AlertList, responses=responses(401, 422, 503), summary="Alerts")
def get_alerts(
    state: Literal["firing", "pending", "resolved", "all"] = Query("firing"),
    principal: Principal = Depends(ANY_KEY),
    conn: psycopg.Connection = Depends(db_conn),
) -> AlertList:
    """Alerts in a state (resolved = ones that fired and ended). Operator keys see only alerts scoped to
    their own operator (e.g. their stale feeds)."""
    operator = principal.operator if principal.role == "operator" else None
    return AlertList(alerts=list_alerts(conn, state, operator=operator))


@router.post(
    "/alerts/{alert_id}/ack", response_model=Alert, responses=responses(401, 403, 404, 422, 503), summary="Acknowledge"
)
def ack_alert(
    alert_id: int = Path(ge=1, le=2**62),
    principal: Principal = Depends(ADMIN),
    conn: psycopg.Connection = Depends(db_conn),
) -> Alert:
    """Mark the alert acknowledged by this admin key (it keeps firing until its condition clears)."""
    alert = acknowledge(conn, alert_id, by=principal.name or principal.label)
    if alert is None:
        raise ApiError(404, f"no alert {alert_id}; GET /v1/alerts?state=all lists them")
    return alert
