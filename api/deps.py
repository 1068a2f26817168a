"""Request dependencies: the database (a pool opened in the lifespan), the caller behind the API key,
role checks, and the operator scope an operator key is confined to."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from api.errors import ApiError
from api.keys import Principal, Role, authenticate
from api.ratelimit import record_failure, refuse_if_limited
from storage import open_pool

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API key from `infrawatch keys create`")
_WWW = {"WWW-Authenticate": "Bearer"}


@dataclass
class Limits:
    """Request limits; past them the API answers 413 with what to do."""

    max_observations: int = 10_000
    max_json_bytes: int = 16 * 1024 * 1024
    max_upload_bytes: int = 200 * 1024 * 1024


class Database:
    """The API's connection pools. Connections are checked before use, so a restarted database is picked
    up again without restarting the API; a wait longer than `timeout` answers 503. Reads that change
    nothing (series, progress, freshness, the console's boards) may go to a hot standby (`read_url`);
    without one they use the primary's pool."""

    def __init__(self, url: str, *, timeout: float = 5.0, max_size: int = 8, read_url: str | None = None) -> None:
        self.url = url
        self.read_url = read_url if read_url and read_url != url else None
        self.timeout = timeout
        self.max_size = max_size
        self.pool: ConnectionPool | None = None
        self.read_pool: ConnectionPool | None = None

    def open(self) -> ConnectionPool:
        if self.pool is None:
            self.pool = open_pool(self.url, min_size=1, max_size=self.max_size, name="infrawatch-api")
        return self.pool

    def open_read(self) -> ConnectionPool:
        if self.read_url is None:
            return self.open()
        if self.read_pool is None:
            self.read_pool = open_pool(self.read_url, min_size=1, max_size=self.max_size, name="infrawatch-api-read")
        return self.read_pool

    def close(self) -> None:
        for pool in (self.pool, self.read_pool):
            if pool is not None:
                pool.close()
        self.pool = self.read_pool = None

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection to the primary for one unit of work, committed when the work returns normally."""
        with self.open().connection(timeout=self.timeout if timeout is None else timeout) as conn:
            yield conn
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                conn.commit()

    @contextmanager
    def read_connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection for reads only: the standby's when one is configured, else the primary's."""
        with self.open_read().connection(timeout=self.timeout if timeout is None else timeout) as conn:
            yield conn
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                conn.rollback()


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def db_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A connection for the request's one call into metrics/, ingest/ or alerts/."""
    with database(request).connection() as conn:
        yield conn


def db_read_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A read-only connection for the request (a hot standby's where INFRAWATCH_DATABASE_READ_URL is set)."""
    with database(request).read_connection() as conn:
        yield conn


def current_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """The caller behind `Authorization: Bearer <key>`; 401 when missing, unknown or revoked; 429 (with
    Retry-After) after too many unknown keys from the caller's address or for one key prefix."""
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "missing API key; send `Authorization: Bearer <key>` (an administrator creates keys with "
            "`infrawatch keys create`)",
            _WWW,
        )
    key = credentials.credentials.strip()
    charge = refuse_if_limited(request, key)  # 429 before any database work once a caller has failed too often
    with database(request).connection() as conn:
        principal = authenticate(conn, key, request.app.state.settings.secret_key)
    if principal is None:
        record_failure(request, charge)
        raise ApiError(401, "unknown or revoked API key; ask an administrator for a valid key", _WWW)
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only keys of the given roles (403 for the others)."""

    def _check(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in roles:
            raise ApiError(
                403,
                f"this endpoint needs a key with role {' or '.join(roles)}; this is a {principal.role} key"
                + (f" of operator {principal.operator}" if principal.operator else ""),
            )
        return principal

    return _check


ANY_KEY = require("operator", "viewer", "admin")
READER = require("viewer", "admin")
ADMIN = require("admin")
WRITER = require("operator", "admin")


def operator_scope(principal: Principal, requested: str | None) -> str | None:
    """The operator a read is confined to: an operator key reads only its own operator (403 for others),
    viewer and admin keys read what they ask for (None = all operators)."""
    if principal.role != "operator":
        return requested
    if requested not in (None, "", principal.operator):
        raise ApiError(
            403,
            f"an operator key of {principal.operator} reads only its own data; "
            f"leave out operator= or use operator={principal.operator}",
        )
    return principal.operator
