"""Alert rules: GET /v1/alert-rules (viewer, admin); PUT and DELETE /v1/alert-rules/{id} (admin)."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from alerts.rules import Rule
from alerts.store import delete_rule, list_rules, upsert_rule
from api.deps import ADMIN, READER, db_conn
from api.errors import ApiError, responses
from api.keys import Principal

router = APIRouter(prefix="/v1", tags=["alerts"])
RuleId = Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="rule id, e.g. dc-pue-hot")


class RuleList(BaseModel):
    rules: list[Rule]


@router.get("/alert-rules", response_model=RuleList, responses=responses(401, 403, 503), summary="Alert rules")
def get_alert_rules(principal: Principal = Depends(READER), conn: psycopg.Connection = Depends(db_conn)) -> RuleList:
    """Every rule in force: the shipped rules file (alerts/rules.yaml) with the administration's changes."""
    return RuleList(rules=list_rules(conn))


@router.put(
    "/alert-rules/{rule_id}",
    response_model=Rule,
    responses={**responses(400, 401, 403, 422, 503), 201: {"model": Rule, "description": "Created"}},
    summary="Add or change an alert rule (admin)",
)
def put_alert_rule(
    rule: Rule,
    rule_id: str = RuleId,
    principal: Principal = Depends(ADMIN),
    conn: psycopg.Connection = Depends(db_conn),
) -> JSONResponse:
    """Create (201) or replace (200) the rule; an admin's change is never overwritten by the rules file."""
    if rule.id != rule_id:
        raise ApiError(422, f"the body's id {rule.id!r} differs from the path's {rule_id!r}; make them equal")
    created = upsert_rule(conn, rule)
    return JSONResponse(rule.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete(
    "/alert-rules/{rule_id}", status_code=204, responses=responses(401, 403, 404, 422, 503), summary="Delete a rule"
)
def delete_alert_rule(
    rule_id: str = RuleId, principal: Principal = Depends(ADMIN), conn: psycopg.Connection = Depends(db_conn)
) -> None:
    """Delete the rule; its open alerts close, and reloading the rules file does not bring it back."""
    if not delete_rule(conn, rule_id):
        raise ApiError(404, f"no alert rule {rule_id!r}; GET /v1/alert-rules lists them")
