"""Errors as JSON `{"error": "<what is wrong and what to do>"}` for every failure the API can answer with."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

DATABASE_DOWN = (
    "the database is unreachable, so nothing from this request was read or stored; "
    "retry in a minute (observations sent again are counted as duplicates, never stored twice)"
)


class ErrorBody(BaseModel):
    """Every error answer: what is wrong and what to do about it."""

    error: str
    details: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """Raised by routes and dependencies; answered as JSON with its status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class DatabaseUnavailable(Exception):
    """The database could not be reached or failed mid-request."""


def error_response(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers)


_DEFAULT_MESSAGES = {
    401: "missing or unknown API key; send `Authorization: Bearer <key>` (keys come from `infrawatch keys create`)",
    403: "this key's role does not allow that",
    404: "no such resource",
    405: "method not allowed on this path; see /docs for what it accepts",
    413: "the request is too large",
}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request — " + "; ".join(parts) + more + "; fix these and send it again (see /docs)"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found",) else None
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body cannot be parsed; send UTF-8 JSON (or multipart/form-data for uploads)"
        if exc.status_code == 404 and message is None:
            message = f"no such endpoint {request.method} {request.url.path}; the API's endpoints are listed at /docs"
        message = message or _DEFAULT_MESSAGES.get(exc.status_code, "request refused")
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return error_response(422, _validation_message(errors), details=errors)

    @app.exception_handler(DatabaseUnavailable)
    async def _db_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return error_response(503, DATABASE_DOWN, headers={"Retry-After": "30"})

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("database pool timeout", extra={"event": "api.db_unavailable", "path": request.url.path})
        return error_response(503, DATABASE_DOWN, headers={"Retry-After": "30"})

    @app.exception_handler(psycopg.OperationalError)
    async def _db_error(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning(
            "database error", extra={"event": "api.db_unavailable", "path": request.url.path, "error": str(exc)}
        )
        return error_response(503, DATABASE_DOWN, headers={"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"event": "api.error", "path": request.url.path})
        return error_response(
            500, "internal error while handling the request; it has been logged — report it to the administrators"
        )


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route may give."""
    text = {
        400: "The body cannot be parsed (not UTF-8 JSON)",
        401: "Missing, malformed, unknown or revoked API key",
        403: "The key's role or operator does not allow this",
        404: "Not found (or not visible to this key)",
        413: "Request too large",
        422: "Invalid request (what to fix is in `error`)",
        503: "Database unreachable; retry later",
    }
    return {c: {"model": ErrorBody, "description": text.get(c, "Error")} for c in codes}
