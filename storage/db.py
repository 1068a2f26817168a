"""Database connections: resolve the configured URL (or the embedded server) and open connections or pools."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from core.settings import Settings, get_settings


def database_url(settings: Settings | None = None) -> str:
    """The PostgreSQL URL to use: INFRAWATCH_DATABASE_URL, or the embedded server under the data dir."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    from core.embedded import embedded_postgres_url

    return embedded_postgres_url(settings.data_dir)


def read_database_url(settings: Settings | None = None) -> str:
    """Where reads go: INFRAWATCH_DATABASE_READ_URL (a hot standby), else the primary of database_url()."""
    settings = settings or get_settings()
    return settings.database_read_url or database_url(settings)


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url or database_url(), autocommit=autocommit, application_name="infrawatch")


def open_pool(
    url: str | None = None, *, min_size: int = 1, max_size: int = 8, name: str = "infrawatch"
) -> ConnectionPool:
    """A pool whose connections are checked before use, so a restarted database is reconnected."""
    pool = ConnectionPool(
        url or database_url(),
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        check=ConnectionPool.check_connection,
        kwargs={"application_name": name},
        reconnect_timeout=0,
    )
    pool.open(wait=False)
    return pool
