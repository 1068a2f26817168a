"""Planner statistics after bulk writes: ANALYZE the tables a bulk load or a rollup rebuild changed enough
that the planner's picture of them is wrong (never analysed, or a tenth of their rows changed since), rather
than waiting for autovacuum — a board panel took 63 s on never-analysed rollups after a backfill, 0.4 ms
after ANALYZE."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

#: the observations' table (migration 0160): its partitions, or TimescaleDB chunks, are analysed with it
OBSERVATIONS = "observation_point"
#: what a bulk load writes besides the observation partitions
LOAD_TABLES = ("series", "observation_history", "feed_freshness", "quarantine", "ingest_batch", "rollup_dirty")
#: what a rollup rebuild writes
ROLLUP_TABLES = ("indicator_rollup", "rollup_state", "series_hour")
#: a table analysed before is analysed again once this share of its rows changed
CHANGED_SHARE = 0.1


def needs_analyze(changed: int, live: int, analysed_before: bool) -> bool:
    """Whether a table with `changed` rows modified since its last ANALYZE (of `live` rows) needs one now."""
    if changed <= 0:
        return False
    return not analysed_before or changed >= CHANGED_SHARE * max(live, 1)


def _observation_parts(conn: psycopg.Connection) -> list[str]:
    """The observations' table's partitions (or hypertable chunks), and itself."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (OBSERVATIONS,),
    ).fetchall()
    return [OBSERVATIONS, *(r[0] for r in rows)]


def analyze_changed(conn: psycopg.Connection, tables: tuple[str, ...] | list[str]) -> list[str]:
    """ANALYZE those of `tables` (and, when OBSERVATIONS is named, its partitions) that `needs_analyze`;
    returns their names. Call it once the writes are committed (their statistics are flushed first); each
    step is its own transaction, or a savepoint inside a caller's (which is never committed here)."""
    try:
        with conn.transaction():
            conn.execute("SELECT pg_stat_force_next_flush()")  # PostgreSQL 15+: this session's counts, now
    except psycopg.errors.UndefinedFunction:
        pass
    names = [t for t in tables if t != OBSERVATIONS]
    with conn.transaction():
        if OBSERVATIONS in tables:
            names += _observation_parts(conn)
        rows = conn.execute(
            "SELECT s.relname, s.n_mod_since_analyze, s.n_live_tup,"
            " (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL), c.relkind"
            " FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
            " WHERE s.schemaname = current_schema() AND s.relname = ANY(%s)",
            (names,),
        ).fetchall()
    done = []
    for name, changed, live, before, kind in rows:
        if kind == "p" or not needs_analyze(int(changed or 0), int(live or 0), bool(before)):
            continue
        with conn.transaction():
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
        done.append(name)
    if done:
        log.info("tables analysed", extra={"event": "storage.analyzed", "tables": done})
    return sorted(done)
