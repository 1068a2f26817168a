"""Versioned migrations: applied once, checked at service start."""

import psycopg
import pytest

from storage.migrate import SchemaBehind, applied_versions, available_migrations, check_schema, upgrade
from tests.conftest import RUN_ID, with_dbname

pytestmark = pytest.mark.embedded


def test_upgrade_applies_every_migration_once_and_then_nothing(db_url):
    assert upgrade(db_url) == []  # the template was already migrated
    with psycopg.connect(db_url) as conn:
        assert applied_versions(conn) == {m.version for m in available_migrations()}
        check_schema(conn)


def test_an_empty_database_is_reported_as_behind_with_the_command_to_run(pg_server):
    name = f"iw_empty_{RUN_ID}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(with_dbname(pg_server, name)) as conn, pytest.raises(SchemaBehind, match="db upgrade"):
            check_schema(conn)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_time_index_of_every_monthly_partition_summarizes_its_ranges_as_they_fill(conn):
    conn.execute("SELECT iw_ensure_partitions('2031-07-01T00:00:00Z', '2031-08-01T00:00:00Z')")  # made now
    options = dict(
        conn.execute(
            "SELECT c.relname, array_to_string(c.reloptions, ',') FROM pg_index x"
            " JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam"
            " JOIN pg_inherits i ON i.inhrelid = x.indrelid AND i.inhparent = 'observation'::regclass"
            " WHERE a.amname = 'brin'"
        ).fetchall()
    )
    assert "observation_y2031m07_ts_idx" in options and "observation_y2031m08_ts_idx" in options
    assert set(options.values()) == {"autosummarize=on"}, options
