"""The ingest pipeline against real PostgreSQL: identity rules, history, quarantine, batches, partitions."""

import threading
import time
from datetime import datetime

import psycopg
import pytest

from ingest.pipeline import IngestPipeline
from tests.conftest import with_dbname

pytestmark = pytest.mark.embedded

TS = "2023-06-30T00:00:00+08:00"


def push(conn, items, operator="cmcc", metric="bs5g_total"):
    return IngestPipeline().submit_items(conn, items, source="test", operator=operator, metric=metric)


def rows(conn, sql, *args):
    return conn.execute(sql, args).fetchall()


def test_duplicate_is_counted_and_stored_once(conn):
    first = push(conn, [{"ts": TS, "region": "360100", "value": 100}])
    again = push(conn, [{"ts": TS, "region": "360100", "value": 100}])
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (again.accepted, again.duplicates, again.revised) == (0, 1, 0)
    assert rows(conn, "SELECT count(*) FROM observation") == [(1,)]


def test_revision_keeps_previous_value_in_history(conn):
    push(conn, [{"ts": TS, "region": "360100", "value": 100}])
    report = push(conn, [{"ts": TS, "region": "360100", "value": 120}])
    assert report.revised == 1
    assert rows(conn, "SELECT value FROM observation") == [(120.0,)]
    assert rows(conn, "SELECT value FROM observation_history") == [(100.0,)]


def test_same_identity_twice_in_one_batch_keeps_the_last_and_the_first_in_history(conn):
    report = push(conn, [{"ts": TS, "region": "360100", "value": 1}, {"ts": TS, "region": "360100", "value": 2}])
    assert (report.accepted, report.revised) == (1, 1)
    assert rows(conn, "SELECT value FROM observation") == [(2.0,)]
    assert rows(conn, "SELECT value FROM observation_history") == [(1.0,)]


def test_identity_includes_operator_and_entity(conn):
    push(conn, [{"ts": TS, "region": "360100", "value": 1}], operator="cmcc")
    push(conn, [{"ts": TS, "region": "360100", "value": 1}], operator="ctcc")
    push(
        conn,
        [
            {"ts": TS, "region": "360100", "value": 5, "entity": "dc-a"},
            {"ts": TS, "region": "360100", "value": 6, "entity": "dc-b"},
        ],
        metric="dc_energy_total_kwh",
    )
    assert rows(conn, "SELECT count(*) FROM observation") == [(4,)]


def test_one_bad_item_never_takes_the_good_ones_down_and_is_quarantined_with_raw_and_source(conn):
    report = push(
        conn,
        [
            {"ts": TS, "region": "360100", "value": 1},
            {"ts": TS, "region": "360200", "value": -5},
            {"ts": TS, "region": "360300", "value": 3},
        ],
    )
    assert (report.accepted, report.rejected) == (2, 1)
    [(source, operator, raw, reason)] = rows(conn, "SELECT source, operator, raw, reason FROM quarantine")
    assert (source, operator) == ("test", "cmcc")
    assert '"value": -5' in raw and "negative" in reason


def test_every_batch_is_recorded_with_its_counts(conn):
    push(
        conn,
        [
            {"ts": TS, "region": "360100", "value": 1},
            {"ts": TS, "region": "360100", "value": 1},
            {"ts": "nope", "region": "360100", "value": 1},
        ],
    )
    assert rows(conn, "SELECT source, accepted, duplicates, revised, rejected FROM ingest_batch") == [
        ("test", 1, 1, 0, 1)
    ]


def test_a_batch_of_only_rejections_is_still_recorded(conn):
    report = push(conn, [{"ts": TS, "region": "1", "value": 1}])
    assert report.rejected == 1 and report.batch_id
    assert rows(conn, "SELECT count(*) FROM quarantine WHERE batch_id = %s", report.batch_id) == [(1,)]


def test_backfill_of_any_past_month_creates_its_partition(conn):
    push(conn, [{"ts": "2009-01-15T00:00:00Z", "region": "360100", "value": 1}])
    [(part,)] = rows(conn, "SELECT tableoid::regclass::text FROM observation_point")
    assert part == "observation_y2009m01"


def test_rows_in_the_default_partition_move_when_their_month_partition_is_made(conn):
    conn.execute(
        "INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id)"
        " VALUES ('bs5g_total', 360100, 'cmcc', '', '2011-05-02T00:00:00Z', 7, 0)"
    )
    assert rows(conn, "SELECT tableoid::regclass::text FROM observation_point") == [("observation_default",)]
    conn.execute("SELECT iw_ensure_partitions('2011-05-01T00:00:00Z', '2011-05-01T00:00:00Z')")
    assert rows(conn, "SELECT tableoid::regclass::text, value FROM observation_point") == [
        ("observation_y2011m05", 7.0)
    ]


def test_freshness_and_rollup_change_log_follow_each_batch(conn):
    push(
        conn,
        [
            {"ts": TS, "region": "360100", "value": 1},
            {"ts": "2023-05-31T00:00:00+08:00", "region": "360100", "value": 1},
        ],
    )
    assert rows(conn, "SELECT operator, metric, region, last_ts::text FROM feed_freshness") == [
        ("cmcc", "bs5g_total", 360100, "2023-06-29 16:00:00+00")
    ]
    assert rows(conn, "SELECT metric, day::text FROM rollup_dirty ORDER BY day") == [
        ("bs5g_total", "2023-05-30"),
        ("bs5g_total", "2023-06-29"),
    ]


def test_a_new_operator_registered_later_is_accepted_without_restarting(conn):
    pipeline = IngestPipeline()
    item = [{"ts": TS, "region": "360100", "value": 1, "entity": "dc1"}]
    assert pipeline.submit_items(conn, item, source="t", operator="gdsdc", metric="dc_energy_it_kwh").rejected == 1
    conn.execute("INSERT INTO operator (id, name) VALUES ('gdsdc', 'A data-centre operator')")
    conn.commit()
    pipeline._operators_loaded_at -= 10  # the cache refresh interval has passed
    assert pipeline.submit_items(conn, item, source="t", operator="gdsdc", metric="dc_energy_it_kwh").accepted == 1


# -- series ids ---------------------------------------------------------------------------------------------


def orphans_and_series(conn):
    """Points whose series id names no series (must be none), and the series rows."""
    return rows(
        conn,
        "SELECT count(*) FROM observation_point p WHERE NOT EXISTS (SELECT 1 FROM series s WHERE s.id = p.series_id)",
    ), rows(conn, "SELECT metric, region, operator, entity FROM series ORDER BY id")


def test_each_series_is_named_once_and_its_points_keyed_by_its_id(conn):
    push(
        conn,
        [
            {"ts": TS, "region": "360100", "value": 1},
            {"ts": "2023-05-31T00:00:00+08:00", "region": "360100", "value": 2},
        ],
    )
    push(conn, [{"ts": TS, "region": "360100", "value": 3}, {"ts": TS, "region": "360200", "value": 4}])  # one revision
    assert orphans_and_series(conn) == (
        [(0,)],
        [("bs5g_total", 360100, "cmcc", ""), ("bs5g_total", 360200, "cmcc", "")],
    )
    assert rows(conn, "SELECT series_id, value FROM observation_point ORDER BY series_id, ts") == [
        (1, 2.0),
        (1, 3.0),
        (2, 4.0),
    ]


def test_series_made_in_a_callers_transaction_that_rolls_back_are_not_reused(conn):
    pipeline = IngestPipeline()
    item = [{"ts": TS, "region": "360100", "value": 1}]
    conn.execute("SELECT 1")  # the caller's transaction: the pipeline's writes are savepoints inside it
    pipeline.submit_items(conn, item, source="t", operator="cmcc", metric="bs5g_total")
    conn.rollback()
    conn.execute("INSERT INTO series (metric, region, operator) VALUES ('traffic_mobile_gb', 360100, 'cmcc')")
    conn.commit()  # a series made after the rollback (ids are never given twice)
    assert pipeline.submit_items(conn, item, source="t", operator="cmcc", metric="bs5g_total").accepted == 1
    conn.commit()
    assert rows(conn, "SELECT metric, value FROM observation") == [("bs5g_total", 1.0)]
    assert orphans_and_series(conn)[0] == [(0,)]


def test_one_pipeline_on_two_databases_takes_each_ones_series_ids(conn, pg_server, template_db):
    pipeline = IngestPipeline()
    item = [{"ts": TS, "region": "360100", "value": 1}]
    pipeline.submit_items(conn, item, source="t", operator="cmcc", metric="bs5g_total")
    name = f"{template_db}_second"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        with psycopg.connect(with_dbname(pg_server, name)) as other:
            push(other, [{"ts": TS, "region": "360700", "value": 9}])  # takes series id 1 there
            pipeline.submit_items(other, item, source="t", operator="cmcc", metric="bs5g_total")
            assert rows(other, "SELECT region, value FROM observation ORDER BY region") == [
                (360100, 1.0),
                (360700, 9.0),
            ]
            assert orphans_and_series(other)[0] == [(0,)]
        pipeline.submit_items(conn, [{**item[0], "value": 2}], source="t", operator="cmcc", metric="bs5g_total")
        assert rows(conn, "SELECT region, value FROM observation") == [(360100, 2.0)]  # a revision, here
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_writers_making_the_same_new_series_share_one_id(conn, db_url):
    """The first writer's series row is not committed yet: the second waits for it, then finds it."""
    item = [{"ts": TS, "region": "360100", "value": 1}]
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        first.execute("SELECT 1")  # a caller's transaction, left open
        IngestPipeline().submit_items(first, item, source="t", operator="cmcc", metric="bs5g_total")
        result = []
        writer = threading.Thread(
            target=lambda: result.append(
                IngestPipeline().submit_items(
                    second,
                    [{**item[0], "ts": "2023-07-31T00:00:00+08:00"}],
                    source="t",
                    operator="cmcc",
                    metric="bs5g_total",
                )
            ),
            daemon=True,
        )
        writer.start()
        deadline = time.monotonic() + 10
        while rows(conn, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", second.info.backend_pid) != [
            ("Lock",)
        ]:
            conn.rollback()
            assert time.monotonic() < deadline, "the second writer never waited for the first one's series"
            time.sleep(0.05)
        first.commit()
        writer.join(10)
    assert [r.accepted for r in result] == [1]
    assert orphans_and_series(conn) == ([(0,)], [("bs5g_total", 360100, "cmcc", "")])
    assert rows(conn, "SELECT count(DISTINCT series_id), count(*) FROM observation_point") == [(1, 2)]


def test_values_and_instants_are_stored_exactly_as_read(conn):
    """The points go to PostgreSQL as binary COPY rows: every double to the last bit, every instant to the
    microsecond, before and after 2000-01-01 (PostgreSQL's own epoch)."""
    values = [0.1 + 0.2, 5e-324, 1 / 3, 123456789.00000001, 0.0, 2.0**33 + 0.5]
    instants = ["1999-12-31T23:59:59.999999Z", "2000-01-01T00:00:00.000001Z", "2023-06-29T16:00:00.123456Z",
                "1970-01-01T00:00:00Z", "2023-06-29T16:00:01Z", "2023-06-29T16:00:02Z"]  # fmt: skip
    items = [{"ts": t, "region": "360100", "value": v, "entity": "dc-a"} for t, v in zip(instants, values, strict=True)]
    report = push(conn, items, metric="dc_energy_total_kwh")
    assert report.accepted == len(items), report.rejections
    stored = {ts: value for ts, value in rows(conn, "SELECT ts, value FROM observation")}
    expected = {datetime.fromisoformat(t): v for t, v in zip(instants, values, strict=True)}
    assert stored == expected
    assert [stored[t].hex() for t in expected] == [v.hex() for v in expected.values()]


def test_series_ids_against_identity_order_keep_each_point_with_its_series(conn):
    """Series made in another order than the identity order (their ids do not rise with it): each point is
    still stored under its own series."""
    pipeline = IngestPipeline()
    for region in ("361100", "360900", "360100"):  # ids 1, 2, 3 against the identity order 360100 < 360900 < 361100
        pipeline.submit_items(
            conn, [{"ts": TS, "region": region, "value": 1}], source="test", operator="cmcc", metric="bs5g_total"
        )
    later = [{"ts": f"2023-07-0{d}T00:00:00+08:00", "region": r, "value": int(r) + d}
             for d in (1, 2, 3) for r in ("360100", "360900", "361100")]  # fmt: skip
    report = pipeline.submit_items(conn, later, source="test", operator="cmcc", metric="bs5g_total")
    assert report.accepted == 9
    assert rows(conn, "SELECT id, region FROM series ORDER BY id") == [(1, 361100), (2, 360900), (3, 360100)]
    got = rows(
        conn,
        "SELECT s.region, o.value FROM observation_point o JOIN series s ON s.id = o.series_id"
        " WHERE o.ts > %s ORDER BY s.region, o.ts",
        TS,
    )
    assert got == [(r, float(r + d)) for r in (360100, 360900, 361100) for d in (1, 2, 3)]
