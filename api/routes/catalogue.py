"""GET /v1/indicators: the metric catalogue and derived indicators with their units."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import ANY_KEY
from api.errors import responses
from api.keys import Principal
from api.schemas import Catalogue, catalogue

router = APIRouter(prefix="/v1", tags=["read"])


@router.get("/indicators", response_model=Catalogue, responses=responses(401, 503), summary="Indicator catalogue")
def get_indicators(principal: Principal = Depends(ANY_KEY)) -> Catalogue:
    """Every pushed metric (unit, kind, cadence) and every derived indicator (docs/interface.md §2–3)."""
    return catalogue()
