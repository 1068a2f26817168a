"""Plan targets: GET /v1/targets[/{id}] with current progress; PUT and DELETE (admin) to add, change, retire."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import ADMIN, READER, db_conn, db_read_conn
from api.errors import ApiError, responses
from api.keys import Principal
from api.schemas import TARGET_ID_PATTERN
from api.telemetry import EVALUATION_SECONDS
from metrics import Progress, Target, evaluate_targets, get_target, list_targets, retire_target, upsert_target

router = APIRouter(prefix="/v1", tags=["targets"])

TargetId = Path(pattern=TARGET_ID_PATTERN, description="the target's id, e.g. jx-2023-5g-new")


class TargetOut(BaseModel):
    target: Target
    progress: Progress | None = None


class TargetList(BaseModel):
    targets: list[TargetOut]


def _progress_by_id(conn: psycopg.Connection, targets: list[Target]) -> dict[str, Progress]:
    ids = [t.id for t in targets if t.active]
    if not ids:
        return {}
    with EVALUATION_SECONDS.time():
        return {p.target_id: p for p in evaluate_targets(conn, target_ids=ids)}


@router.get("/targets", response_model=TargetList, responses=responses(401, 403, 503), summary="Plan targets")
def get_targets(
    include_retired: bool = Query(False, description="also list retired targets"),
    principal: Principal = Depends(READER),
    conn: psycopg.Connection = Depends(db_read_conn),
) -> TargetList:
    """Every target with its progress now (retired ones have none). Viewer and admin keys."""
    targets = list_targets(conn, include_retired=include_retired)
    progress = _progress_by_id(conn, targets)
    return TargetList(targets=[TargetOut(target=t, progress=progress.get(t.id)) for t in targets])


@router.get(
    "/targets/{target_id}", response_model=TargetOut, responses=responses(401, 403, 404, 422, 503), summary="A target"
)
def get_one_target(
    target_id: str = TargetId, principal: Principal = Depends(READER), conn: psycopg.Connection = Depends(db_read_conn)
) -> TargetOut:
    target = get_target(conn, target_id)
    if target is None:
        raise ApiError(404, f"no target {target_id!r}; GET /v1/targets lists them")
    return TargetOut(target=target, progress=_progress_by_id(conn, [target]).get(target.id))


@router.put(
    "/targets/{target_id}",
    response_model=Target,
    status_code=200,
    responses={**responses(400, 401, 403, 422, 503), 201: {"model": Target, "description": "Created"}},
    summary="Add or change a target (admin)",
)
def put_target(
    target: Target,
    target_id: str = TargetId,
    principal: Principal = Depends(ADMIN),
    conn: psycopg.Connection = Depends(db_conn),
) -> JSONResponse:
    """Create the target (201) or replace it (200); the body's `id` must equal the path's."""
    if target.id != target_id:
        raise ApiError(422, f"the body's id {target.id!r} differs from the path's {target_id!r}; make them equal")
    created = upsert_target(conn, target)
    return JSONResponse(target.model_dump(mode="json"), status_code=201 if created else 200)


@router.delete(
    "/targets/{target_id}",
    status_code=204,
    responses=responses(401, 403, 404, 422, 503),
    summary="Retire a target (admin)",
)
def delete_target(
    target_id: str = TargetId, principal: Principal = Depends(ADMIN), conn: psycopg.Connection = Depends(db_conn)
) -> None:
    """Retire the target: it stops being evaluated and alerted on, and stays listed with include_retired."""
    if not retire_target(conn, target_id):
        raise ApiError(404, f"no target {target_id!r} to retire")
