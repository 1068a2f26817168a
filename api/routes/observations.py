"""POST /v1/observations: a JSON batch through the ingest pipeline, operator taken from the key."""

from __future__ import annotations

import time

import psycopg
from fastapi import APIRouter, Depends, Request

from api.deps import WRITER, db_conn
from api.errors import ApiError, responses
from api.keys import Principal
from api.schemas import ObservationsIn, ObservationsReport
from api.telemetry import record_ingest
from reference.operators import ADMIN_OPERATOR, ADMIN_WRITTEN

router = APIRouter(prefix="/v1", tags=["ingest"])


@router.post(
    "/observations",
    response_model=ObservationsReport,
    responses=responses(400, 401, 403, 413, 422, 503),
    summary="Push observations",
)
def post_observations(
    body: ObservationsIn,
    request: Request,
    principal: Principal = Depends(WRITER),
    conn: psycopg.Connection = Depends(db_conn),
) -> ObservationsReport:
    """Store a batch: each item is validated on its own (docs/interface.md §4); rejected items come back with
    their index and reason and are kept in quarantine. An operator key writes only for its operator
    (an item naming another operator is rejected); an admin key may name `operator` per item and
    defaults to the administration's reference series (operator `admin`)."""
    limit = request.app.state.limits.max_observations
    if len(body.observations) > limit:
        raise ApiError(413, f"{len(body.observations)} observations in one request; send at most {limit} per request")
    is_admin = principal.role == "admin"
    if not is_admin and principal.operator in ADMIN_WRITTEN:
        raise ApiError(403, f"only admin keys write operator {principal.operator!r}")
    started = time.perf_counter()
    pipeline = request.app.state.pipeline
    batch = pipeline.prepare(
        body.observations, operator=ADMIN_OPERATOR if is_admin else principal.operator, operator_may_vary=is_admin
    )
    report = pipeline.store(conn, batch, source=f"http:{principal.label}")
    record_ingest(report, started)
    return ObservationsReport.of(report)
