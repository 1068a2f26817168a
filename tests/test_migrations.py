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
