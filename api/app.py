"""The FastAPI app factory: wires settings, the database pool (opened in the lifespan), the routers,
error handlers, request metrics, a background task given by the caller (the scheduler) and the web console
if installed."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool

from api.deps import Database, Limits
from api.docs import install_docs
from api.errors import install_error_handlers
from api.routes import (
    alert_rules,
    alerts,
    bulletins,
    catalogue,
    freshness,
    health,
    observations,
    progress,
    reconciliation,
    series,
    targets,
    uploads,
)
from api.telemetry import ApiMiddleware
from core.settings import DEV_SECRET_KEY, Settings, get_settings
from ingest.pipeline import IngestPipeline
from storage import SchemaBehind, check_schema, database_url

log = logging.getLogger(__name__)

DESCRIPTION = """Telemetry ingest and plan-target monitoring. The interface for operators and their tools
(identifiers, metrics, observations, CSV, MQTT, statuses) is described in docs/interface.md.

Authenticate with `Authorization: Bearer <key>`; keys come from `infrawatch keys create` and carry a role:
`operator` (writes and reads only its own operator's data), `viewer` (reads all), `admin` (all, plus
targets and alert handling). Errors are JSON `{"error": "..."}` saying what to fix."""


def _optional(module: str) -> Any | None:
    """Import a module that may not be installed (yet); a missing module is no error, a broken one is."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise


def _check_database(db: Database) -> None:
    """Fail fast on a schema that is behind; a database that is down only delays readiness."""
    try:
        with db.connection(timeout=min(db.timeout, 10.0)) as conn:
            check_schema(conn)
    except SchemaBehind:
        raise
    except (PoolTimeout, psycopg.OperationalError) as exc:
        log.error(
            "database unreachable at start; data endpoints answer 503 until it is back",
            extra={"event": "api.db_unavailable", "error": str(exc)},
        )


def create_app(
    settings: Settings | None = None,
    *,
    background: Callable[[str], Any] | None = None,
    db_timeout: float = 5.0,
    limits: Limits | None = None,
) -> FastAPI:
    """The API application. `background(database_url)`, when given, is started with the app and its result
    shut down with it: `infrawatch serve` passes the scheduler (the API itself knows no scheduler)."""
    settings = settings or get_settings()
    url = database_url(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db: Database = app.state.db
        db.open()
        await run_in_threadpool(_check_database, db)
        handle = await run_in_threadpool(background, url) if background is not None else None
        if settings.secret_key == DEV_SECRET_KEY:
            log.warning(
                "INFRAWATCH_SECRET_KEY is the development default: set a secret of your own before "
                "creating production keys",
                extra={"event": "api.insecure_secret"},
            )
        log.info("api ready", extra={"event": "api.start"})
        try:
            yield
        finally:
            if handle is not None:
                await run_in_threadpool(handle.shutdown)
            await run_in_threadpool(db.close)
            log.info("api stopped", extra={"event": "api.stop"})

    app = FastAPI(
        title="infrawatch",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_docs(app)
    app.state.settings = settings
    app.state.db = Database(url, timeout=db_timeout, read_url=settings.database_read_url or None)
    app.state.limits = limits or Limits()
    app.state.pipeline = IngestPipeline()
    install_error_handlers(app)
    for module in (
        health,
        observations,
        uploads,
        catalogue,
        series,
        targets,
        progress,
        alerts,
        alert_rules,
        freshness,
        reconciliation,
        bulletins,
    ):
        app.include_router(module.router)
    console = _optional("api.console")
    if console is not None and hasattr(console, "router"):
        app.include_router(console.router)
    app.add_middleware(ApiMiddleware, max_body_bytes=app.state.limits.max_json_bytes)
    return app
