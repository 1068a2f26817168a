"""GET /v1/freshness: per operator, metric and region, the last ts received, its age and staleness."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import ANY_KEY, db_read_conn, operator_scope
from api.errors import responses
from api.keys import Principal
from api.schemas import OPERATOR_PATTERN
from metrics import FeedFreshness, feed_freshness

router = APIRouter(prefix="/v1", tags=["read"])


class FreshnessList(BaseModel):
    feeds: list[FeedFreshness]


@router.get(
    "/freshness", response_model=FreshnessList, responses=responses(401, 403, 422, 503), summary="Feed freshness"
)
def get_freshness(
    operator: str | None = Query(None, pattern=OPERATOR_PATTERN, description="one operator; default all"),
    principal: Principal = Depends(ANY_KEY),
    conn: psycopg.Connection = Depends(db_read_conn),
) -> FreshnessList:
    """Operator keys see only their own operator's feeds."""
    return FreshnessList(feeds=feed_freshness(conn, operator=operator_scope(principal, operator)))
