"""Liveness (/healthz), readiness (/readyz: database and broker) and Prometheus figures (/metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import database
from api.health import check_broker, ping_database, replica_lag_seconds
from api.schemas import Readiness
from api.telemetry import READ_REPLICA_LAG

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up and serving (does not touch the database)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready"}})
def readyz(request: Request) -> JSONResponse:
    """Ready when the database (and its read replica, where one is configured) answers and the MQTT broker
    accepts a connection; 503 says which one failed."""
    try:
        with database(request).connection(timeout=2.0) as conn:
            ping_database(conn)
        db_state = "ok"
    except Exception as exc:
        db_state = f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    replica_state = "not configured"
    replica_ok = True
    if database(request).read_url is not None:
        try:
            with database(request).read_connection(timeout=2.0) as conn:
                lag = replica_lag_seconds(conn)
            if lag is None:
                replica_state = "ok (not a standby: reads go to a primary)"
            else:
                READ_REPLICA_LAG.set(lag)
                replica_state = f"ok (last replayed commit {lag:.1f} s ago)"
        except Exception as exc:
            replica_ok = False
            replica_state = f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    broker_problem = check_broker(request.app.state.settings.mqtt_url)
    broker_state = "ok" if broker_problem is None else f"unreachable: {broker_problem}"
    ready = db_state == "ok" and broker_problem is None and replica_ok
    body = Readiness(ready=ready, database=db_state, broker=broker_state, read_replica=replica_state)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus figures", response_class=Response)
def metrics() -> Response:
    """The service's own figures in Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
