"""GET /v1/alerts (by state, rule and operator, a page at a time, with the notification groups; operator keys
see their own operator's) and POST /v1/alerts/{id}/ack (admin)."""

from __future__ import annotations

from typing import Literal

import psycopg
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from alerts.store import Alert, AlertGroup, acknowledge, alert_groups, count_alerts, list_alerts
from api.deps import ADMIN, ANY_KEY, db_conn
from api.errors import ApiError, responses
from api.keys import Principal

router = APIRouter(prefix="/v1", tags=["alerts"])


class AlertList(BaseModel):
    alerts: list[Alert]
    #: how many alerts match the filters (the page holds at most `limit` of them, from `offset`)
    total: int
    limit: int
    offset: int
    #: the matching alerts folded by rule and notification group (all of them, not only this page's)
    groups: list[AlertGroup]


@router.get("/alerts", response_model=AlertList, responses=responses(401, 403, 422, 503), summary="Alerts")
def get_alerts(
    state: Literal["firing", "pending", "resolved", "all"] = Query("firing"),
    rule: str | None = Query(None, max_length=64, description="only this rule's alerts"),
    operator: str | None = Query(
        None, pattern=r"^[a-z][a-z0-9_]{1,31}$", description="only alerts about this operator"
    ),
    limit: int = Query(100, ge=1, le=1000, description="alerts per page"),
    offset: int = Query(0, ge=0, le=10_000_000, description="alerts to skip (newest first)"),
    principal: Principal = Depends(ANY_KEY),
    conn: psycopg.Connection = Depends(db_conn),
) -> AlertList:
    """Alerts in a state (resolved = ones that fired and ended), newest first, with the groups their
    notifications go by. Operator keys see only alerts scoped to their own operator (e.g. their stale feeds)."""
    if principal.role == "operator":
        if operator is not None and operator != principal.operator:
            raise ApiError(403, f"this key reads only operator {principal.operator}'s alerts")
        operator = principal.operator
    return AlertList(
        alerts=list_alerts(conn, state, operator=operator, rule=rule, limit=limit, offset=offset),
        total=count_alerts(conn, state, operator=operator, rule=rule),
        limit=limit,
        offset=offset,
        groups=alert_groups(conn, state, operator=operator, rule=rule),
    )


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
