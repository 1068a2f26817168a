"""GET /v1/progress: every active target's progress with the cities and operators lagging most."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.deps import READER, db_read_conn
from api.errors import responses
from api.keys import Principal
from api.telemetry import EVALUATION_SECONDS
from metrics import Progress, evaluate_targets

router = APIRouter(prefix="/v1", tags=["targets"])


class ProgressList(BaseModel):
    progress: list[Progress]


@router.get(
    "/progress", response_model=ProgressList, responses=responses(401, 403, 503), summary="Progress of active targets"
)
def get_progress(
    principal: Principal = Depends(READER), conn: psycopg.Connection = Depends(db_read_conn)
) -> ProgressList:
    """Evaluated now (docs/interface.md §8). Viewer and admin keys: progress sums every operator's data."""
    with EVALUATION_SECONDS.time():
        return ProgressList(progress=evaluate_targets(conn))
