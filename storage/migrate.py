"""Versioned schema migrations: apply storage/migrations/NNNN_name.sql in order, once each."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from core.planzone import plan_tz_name

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_305_119_001  # advisory lock: one migrator at a time


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


class SchemaBehind(RuntimeError):
    """The database schema is older than this code expects."""


def available_migrations() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:4])
        found.append(Migration(version, path.stem[5:], path))
    return found


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )


def applied_versions(conn: psycopg.Connection) -> set[int]:
    exists = conn.execute("SELECT to_regclass('schema_migration') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migration")}


def timescaledb_loadable(conn: psycopg.Connection) -> bool:
    """TimescaleDB is installed on the server and preloaded, so CREATE EXTENSION will work."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " current_setting('shared_preload_libraries', true)"
    ).fetchone()
    return bool(row and row[0] and "timescaledb" in (row[1] or ""))


def upgrade(url: str, *, use_timescaledb: bool | None = None, through: int | None = None) -> list[Migration]:
    """Apply every pending migration (with `through`, only those up to that version: a test's older schema);
    returns those applied. Safe to run from several processes."""
    applied: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            done = applied_versions(conn)
            if not done:
                want_ts = timescaledb_loadable(conn) if use_timescaledb is None else use_timescaledb
                if want_ts:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    log.info("timescaledb enabled", extra={"event": "migrate.timescaledb"})
            for migration in available_migrations():
                if migration.version in done or (through is not None and migration.version > through):
                    continue
                with conn.transaction():
                    _ensure_table(conn)
                    conn.execute(migration.path.read_text(encoding="utf-8"))
                    conn.execute(
                        "INSERT INTO schema_migration (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info(
                    "migration applied",
                    extra={"event": "migrate.applied", "version": migration.version, "migration": migration.name},
                )
                applied.append(migration)
            _set_plan_zone(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def _set_plan_zone(conn: psycopg.Connection) -> None:
    """Record INFRAWATCH_TIMEZONE as the database's `infrawatch.plan_tz`, read by iw_plan_tz() in every new
    session (the boards' included)."""
    zone = plan_tz_name()
    row = conn.execute("SELECT current_setting('infrawatch.plan_tz', true), current_database()").fetchone()
    if row is None or row[0] == zone or (not row[0] and zone == "Asia/Shanghai"):  # iw_plan_tz()'s default
        return
    try:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET infrawatch.plan_tz = {}").format(sql.Identifier(row[1]), sql.Literal(zone))
        )
        conn.execute(sql.SQL("SET infrawatch.plan_tz = {}").format(sql.Literal(zone)))
    except psycopg.errors.InsufficientPrivilege:
        log.warning(
            "cannot record the plans' time zone in the database (not its owner); SQL functions use Asia/Shanghai",
            extra={"event": "migrate.plan_tz_refused", "zone": zone},
        )
        return
    log.info("plans' time zone recorded", extra={"event": "migrate.plan_tz", "zone": zone})


def check_schema(conn: psycopg.Connection) -> None:
    """Raise SchemaBehind with what to run when the database lacks migrations this code needs."""
    have = applied_versions(conn)
    missing = [m for m in available_migrations() if m.version not in have]
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise SchemaBehind(
            f"the database schema is behind this version of infrawatch (missing {names}); "
            "run `infrawatch db upgrade` first"
        )


def uses_timescaledb(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").fetchone()
    return bool(row and row[0])
