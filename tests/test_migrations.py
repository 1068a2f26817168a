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


def test_every_monthly_partition_is_keyed_by_series_and_time_and_has_no_other_index(conn):
    conn.execute("SELECT iw_ensure_partitions('2031-07-01T00:00:00Z', '2031-08-01T00:00:00Z')")  # made now
    indexes = dict(
        conn.execute(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
            " JOIN pg_class c ON c.oid = x.indexrelid"
            " JOIN pg_inherits i ON i.inhrelid = x.indrelid AND i.inhparent = 'observation_point'::regclass"
        ).fetchall()
    )
    assert {"observation_y2031m07_pkey", "observation_y2031m08_pkey", "observation_default_pkey"} <= set(indexes)
    assert all(d.endswith("USING btree (series_id, ts)") for d in indexes.values()), indexes


# -- 0160 on a populated database -----------------------------------------------------------------------------

#: Written as the ingest pipeline of 0140 wrote them: batch 1 stores five observations (two UTC months with
#: partitions, months without one in the default partition, a data centre's meter, an administration series),
#: batch 2 revises one (its old value to history, the row takes batch 2 and its receipt time) and brings one
#: more; a rejection of batch 2 is quarantined.
_WIDE_ROWS = """
INSERT INTO ingest_batch (id, source, operator, received_at, accepted, revised, rejected) VALUES
    (1, 'csv', 'cmcc', '2023-07-01T08:00:00Z', 5, 0, 0),
    (2, 'mqtt', 'cmcc', '2023-07-02T08:00:00Z', 1, 1, 1);
SELECT setval('ingest_batch_id_seq', 2);
SELECT iw_ensure_partitions('2023-05-01T00:00:00Z', '2023-06-30T00:00:00Z');
INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id, received_at) VALUES
    ('bs5g_total', 360100, 'cmcc', '', '2023-05-31T16:00:00Z', 100, 1, '2023-07-01T08:00:00Z'),
    ('bs5g_total', 360100, 'cmcc', '', '2023-06-29T16:00:00Z', 120, 2, '2023-07-02T08:00:00Z'),
    ('bs5g_total', 360200, 'cmcc', '', '2023-06-29T16:00:00Z', 50, 1, '2023-07-01T08:00:00Z'),
    ('dc_energy_it_kwh', 360100, 'cmcc', 'dc-a', '2023-06-29T16:05:00Z', 12.5, 1, '2023-07-01T08:00:00Z'),
    ('population', 360100, 'admin', '', '2022-12-31T16:00:00Z', 6.5e6, 1, '2023-07-01T08:00:00Z'),
    ('bs5g_total', 360100, 'cmcc', '', '2031-01-01T00:00:00Z', 7, 2, '2023-07-02T08:00:00Z');
INSERT INTO observation_history (metric, region, operator, entity, ts, value, batch_id, superseded_at, superseded_by)
VALUES ('bs5g_total', 360100, 'cmcc', '', '2023-06-29T16:00:00Z', 110, 1, '2023-07-02T08:00:00Z', 2);
INSERT INTO quarantine (batch_id, source, operator, location, field, raw, reason)
VALUES (2, 'mqtt', 'cmcc', 'item 3', 'value', '{"value": -5}', 'value must not be negative');
INSERT INTO feed_freshness (operator, metric, region, last_ts, last_received_at)
VALUES ('cmcc', 'bs5g_total', 360100, '2031-01-01T00:00:00Z', '2023-07-02T08:00:00Z');
INSERT INTO indicator_rollup (interval, bucket, indicator, region, operator, entity, value)
VALUES ('1d', '2023-06-29T16:00:00Z', 'bs5g_total', 360100, '', '', 120);
-- a view another migration might have made over the table, with a grant
CREATE VIEW iw_test_latest AS SELECT metric, max(ts) AS last_ts, max(received_at) AS received FROM observation
GROUP BY metric;
GRANT SELECT ON iw_test_latest TO PUBLIC;
"""

_UNCHANGED = {
    "observation": "SELECT metric, region, operator, entity, ts, value, batch_id, received_at FROM observation"
    " ORDER BY 1, 2, 3, 4, 5",
    "partitions": "SELECT o.tableoid::regclass::text, count(*) FROM {observations} o GROUP BY 1 ORDER BY 1",
    "history": "SELECT * FROM observation_history ORDER BY ts",
    "batches": "SELECT * FROM ingest_batch ORDER BY id",
    "quarantine": "SELECT * FROM quarantine",
    "freshness": "SELECT * FROM feed_freshness",
    "rollups": "SELECT * FROM indicator_rollup",
    "reported totals": "SELECT * FROM iw_reported_total ORDER BY 1, 2, 3, 4",
    "a dependent view": "SELECT * FROM iw_test_latest ORDER BY 1",
}


def _read_all(conn: psycopg.Connection, observations: str) -> dict[str, list[tuple[object, ...]]]:
    return {k: conn.execute(q.format(observations=observations)).fetchall() for k, q in _UNCHANGED.items()}


@pytest.fixture
def populated_0140(pg_server):
    """A database migrated up to 0140 holding observations, a revision, a rejection, freshness and rollups."""
    name = f"iw_populated_{RUN_ID}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(pg_server, name)
    try:
        assert upgrade(url, through=140)[-1].version == 140
        with psycopg.connect(url) as conn:
            conn.execute(_WIDE_ROWS)
            conn.commit()
        yield url
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_0160_converts_a_populated_database_in_place_and_observation_reads_the_same(populated_0140):
    with psycopg.connect(populated_0140) as conn:
        before = _read_all(conn, "observation")
    assert [m.version for m in upgrade(populated_0140)] == [
        m.version for m in available_migrations() if m.version > 140
    ]
    with psycopg.connect(populated_0140) as conn:
        after = _read_all(conn, "observation_point")
        assert after == before
        assert len(before["observation"]) == 6
        assert before["partitions"] == [
            ("observation_default", 2),
            ("observation_y2023m05", 1),
            ("observation_y2023m06", 3),
        ]
        # one series per identity, the points keyed by (series_id, ts), the old columns gone
        assert conn.execute("SELECT count(*) FROM series").fetchone() == (4,)
        assert conn.execute(
            "SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = 'observation_point'::regclass AND attnum > 0 AND NOT attisdropped"
        ).fetchone() == (["series_id", "ts", "value", "batch_id"],)
        assert conn.execute(
            "SELECT to_regclass('observation_ts_brin'), to_regclass('observation_wide')"
        ).fetchone() == (
            None,
            None,
        )
        assert conn.execute("SELECT has_table_privilege('public', 'iw_test_latest', 'SELECT')").fetchone() == (True,)
        check_schema(conn)

    # the pipeline carries on: a duplicate and a revision of observations stored before the upgrade
    from ingest.pipeline import IngestPipeline

    with psycopg.connect(populated_0140) as conn:
        report = IngestPipeline().submit_items(
            conn,
            [
                {"ts": "2023-06-30T00:00:00+08:00", "region": "360200", "value": 50},  # duplicate
                {"ts": "2023-06-30T00:00:00+08:00", "region": "360100", "value": 125},  # revision of 120
            ],
            source="test",
            operator="cmcc",
            metric="bs5g_total",
        )
        assert (report.accepted, report.duplicates, report.revised) == (0, 1, 1)
        assert conn.execute("SELECT count(*) FROM series").fetchone() == (4,)  # no new series
        assert conn.execute(
            "SELECT value, batch_id FROM observation_history WHERE region = 360100 ORDER BY superseded_by"
        ).fetchall() == [(110.0, 1), (120.0, 2)]
        assert conn.execute(
            "SELECT value, batch_id = %s, received_at IS NOT NULL FROM observation"
            " WHERE region = 360100 AND ts = '2023-06-29T16:00:00Z'",
            (report.batch_id,),
        ).fetchone() == (125.0, True, True)
