"""Database connections: resolve the configured URL (or the embedded server) and open connections or pools."""

from __future__ import annotations

from typing import Any

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


#: Session settings of our connections: no JIT compilation. Our statements are short reads on indexes and
#: bulk writes; PostgreSQL compiles any statement whose estimate passes jit_above_cost, and on the live series
#: reads compiling took longer (45 ms) than the whole statement ran without it (docs/benchmarks.md).
SESSION_OPTIONS = "-c jit=off"


def session_options(url: str) -> str | None:
    """The `options` of our sessions: SESSION_OPTIONS, or None (nothing added) when the URL sets options of
    its own, which win; so does a pooler that refuses them (give the URL an `options=` to choose)."""
    from psycopg.conninfo import conninfo_to_dict

    return None if "options" in conninfo_to_dict(url) else SESSION_OPTIONS


def connect(
    url: str | None = None, *, autocommit: bool = False, application_name: str = "infrawatch", **params: Any
) -> psycopg.Connection:
    """A connection with our session settings (session_options); `params` are further connection parameters
    (connect_timeout, keepalives …)."""
    url = url or database_url()
    # a keyword given as None is left out of the connection string
    return psycopg.connect(
        url, autocommit=autocommit, application_name=application_name, options=session_options(url), **params
    )


def open_pool(
    url: str | None = None, *, min_size: int = 1, max_size: int = 8, name: str = "infrawatch"
) -> ConnectionPool:
    """A pool whose connections are checked before use, so a restarted database is reconnected."""
    url = url or database_url()
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        check=ConnectionPool.check_connection,
        kwargs={"application_name": name, "options": session_options(url)},
        reconnect_timeout=0,
    )
    pool.open(wait=False)
    return pool
