"""The TimescaleDB path: `observation_point` (the observations keyed by series and time, read through the
`observation` view) as a compressed hypertable behaves like the partitioned table.

Runs only when INFRAWATCH_TIMESCALE_URL names a server with TimescaleDB preloaded (CI has none, so this is
the one module that skips). Each test gets a fresh database on that server, cloned from one that
storage.upgrade migrated.
Scenarios of tests/test_pipeline.py, tests/test_metrics_query.py and tests/test_progress_scenarios.py are
run again here unchanged: the same hand-computed answers must come out of a hypertable.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import tests.test_hour_summaries as hour_summaries
import tests.test_metrics_query as metrics_scenarios
import tests.test_pipeline as pipeline_scenarios
import tests.test_progress_scenarios as progress_scenarios
from core.settings import get_settings
from ingest.pipeline import IngestPipeline
from ingest.report import BatchReport
from metrics import indicator_series, indicator_value, parse_as_of, refresh_rollups
from metrics.timeutil import PLAN_TZ
from storage import upgrade
from storage.maintenance import drop_old_partitions
from storage.migrate import uses_timescaledb
from tests.conftest import RUN_ID, with_dbname

TIMESCALE_URL = os.environ.get("INFRAWATCH_TIMESCALE_URL", "")

pytestmark = pytest.mark.skipif(
    not TIMESCALE_URL, reason="INFRAWATCH_TIMESCALE_URL is not set (a PostgreSQL with TimescaleDB preloaded)"
)

TS = "2023-06-30T00:00:00+08:00"


@pytest.fixture(scope="session")
def ts_template() -> Iterator[str]:
    """A database on the TimescaleDB server migrated by storage.upgrade, closed to connections so that it can
    serve as a template (TimescaleDB's job scheduler would otherwise stay connected to it)."""
    name = f"iw_tsdb_tmpl_{RUN_ID}"
    with psycopg.connect(TIMESCALE_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_dbname(TIMESCALE_URL, name)
        upgrade(url)
        with psycopg.connect(url) as check:
            assert uses_timescaledb(check), (
                "INFRAWATCH_TIMESCALE_URL points at a server without TimescaleDB; install it and add "
                "timescaledb to shared_preload_libraries"
            )
        with psycopg.connect(TIMESCALE_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        yield name
    finally:
        with psycopg.connect(TIMESCALE_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def ts_url(ts_template: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated database on the TimescaleDB server; INFRAWATCH_DATABASE_URL points at it."""
    name = f"iw_tsdb_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(TIMESCALE_URL, autocommit=True) as admin:
        for attempt in range(50):  # the template's last backend may still be exiting
            try:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{ts_template}"')
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.1)
    monkeypatch.setenv("INFRAWATCH_DATABASE_URL", with_dbname(TIMESCALE_URL, name))
    get_settings.cache_clear()
    try:
        yield with_dbname(TIMESCALE_URL, name)
    finally:
        get_settings.cache_clear()
        with psycopg.connect(TIMESCALE_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def ts_conn(ts_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(ts_url) as c:
        yield c


def push(
    conn: psycopg.Connection, items: list[dict[str, object]], operator: str = "cmcc", metric: str = "bs5g_total"
) -> BatchReport:
    return IngestPipeline().submit_items(conn, items, source="test", operator=operator, metric=metric)


def rows(conn: psycopg.Connection, sql: str, *args: object) -> list[tuple[Any, ...]]:
    return conn.execute(sql, args).fetchall()


def compress_all_chunks(conn: psycopg.Connection) -> int:
    """Compress every chunk of `observation_point` now (the policy would do it after 60 days); returns how many."""
    done = rows(conn, "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('observation_point') c")
    conn.commit()
    return len(done)


def run_compression_policy(conn: psycopg.Connection) -> None:
    """Run the compression policy's job now instead of waiting for TimescaleDB's scheduler."""
    [(job,)] = rows(
        conn,
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_compression' AND hypertable_name = 'observation_point'",
    )
    conn.commit()
    conn.autocommit = True  # the policy commits as it goes: it must run outside a transaction block
    try:
        conn.execute("CALL run_job(%s)", (job,))
    finally:
        conn.autocommit = False


def compressed_chunks(conn: psycopg.Connection) -> list[bool]:
    return [
        bool(r[0])
        for r in rows(
            conn, "SELECT is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = 'observation_point'"
        )
    ]


# -- the schema -------------------------------------------------------------------------------------------


def test_the_observations_are_a_hypertable_with_weekly_chunks_compressed_by_series_and_a_policy(
    ts_conn: psycopg.Connection,
) -> None:
    assert rows(
        ts_conn,
        "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'observation_point'",
    ) == [(True,)]
    assert rows(
        ts_conn,
        "SELECT column_name, time_interval::text FROM timescaledb_information.dimensions"
        " WHERE hypertable_name = 'observation_point'",
    ) == [("ts", "7 days")]
    assert rows(
        ts_conn,
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
        " WHERE hypertable = 'observation_point'::regclass",
    ) == [("series_id", "ts")]
    assert rows(
        ts_conn,
        "SELECT config->>'compress_after' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_compression' AND hypertable_name = 'observation_point'",
    ) == [("60 days",)]
    # no partitions to make ahead on a hypertable
    assert rows(ts_conn, "SELECT iw_ensure_partitions(now(), now() + interval '90 days')") == [(0,)]


# -- the ingest pipeline ------------------------------------------------------------------------------------

PIPELINE_SCENARIOS = [
    pipeline_scenarios.test_duplicate_is_counted_and_stored_once,
    pipeline_scenarios.test_revision_keeps_previous_value_in_history,
    pipeline_scenarios.test_same_identity_twice_in_one_batch_keeps_the_last_and_the_first_in_history,
    pipeline_scenarios.test_identity_includes_operator_and_entity,
    pipeline_scenarios.test_one_bad_item_never_takes_the_good_ones_down_and_is_quarantined_with_raw_and_source,
    pipeline_scenarios.test_every_batch_is_recorded_with_its_counts,
    pipeline_scenarios.test_freshness_and_rollup_change_log_follow_each_batch,
    pipeline_scenarios.test_a_new_operator_registered_later_is_accepted_without_restarting,
]


@pytest.mark.parametrize("scenario", PIPELINE_SCENARIOS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_pipeline_scenario_gives_the_same_result_on_a_hypertable(
    ts_conn: psycopg.Connection, scenario: Callable[[psycopg.Connection], None]
) -> None:
    scenario(ts_conn)


def test_backfill_of_any_past_month_lands_in_a_chunk_of_its_own(ts_conn: psycopg.Connection) -> None:
    push(ts_conn, [{"ts": "2009-01-15T00:00:00Z", "region": "360100", "value": 1}])
    [(table,)] = rows(ts_conn, "SELECT tableoid::regclass::text FROM observation_point")
    assert table.startswith("_timescaledb_internal._hyper_")
    assert rows(
        ts_conn,
        "SELECT range_start, range_end FROM timescaledb_information.chunks WHERE hypertable_name = 'observation_point'",
    ) == [(datetime(2009, 1, 15, tzinfo=UTC), datetime(2009, 1, 22, tzinfo=UTC))]  # weekly chunks start on Thursdays


def test_the_compression_policy_compresses_chunks_older_than_sixty_days_only(ts_conn: psycopg.Connection) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    push(ts_conn, [{"ts": TS, "region": "360100", "value": 1}, {"ts": yesterday, "region": "360100", "value": 2}])
    run_compression_policy(ts_conn)
    assert rows(
        ts_conn,
        "SELECT range_start < now() - interval '60 days', is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'observation_point' ORDER BY range_start",
    ) == [(True, True), (False, False)]  # the June 2023 chunk is compressed, yesterday's is not


def test_a_revision_into_a_compressed_chunk_is_stored_and_keeps_history(ts_conn: psycopg.Connection) -> None:
    push(ts_conn, [{"ts": TS, "region": "360100", "value": 100}, {"ts": TS, "region": "360200", "value": 50}])
    assert compress_all_chunks(ts_conn) == 1 and compressed_chunks(ts_conn) == [True]
    report = push(
        ts_conn,
        [
            {"ts": TS, "region": "360100", "value": 120},  # revision
            {"ts": TS, "region": "360200", "value": 50},  # duplicate
            {"ts": TS, "region": "360300", "value": 7},  # new, same chunk
        ],
    )
    assert (report.accepted, report.duplicates, report.revised) == (1, 1, 1)
    assert rows(ts_conn, "SELECT region, value FROM observation ORDER BY region") == [
        (360100, 120.0),
        (360200, 50.0),
        (360300, 7.0),
    ]
    assert rows(ts_conn, "SELECT region, value, superseded_by FROM observation_history") == [
        (360100, 100.0, report.batch_id)
    ]
    # the policy's next run folds the changed rows back into compressed form; the answers stay
    run_compression_policy(ts_conn)
    assert compressed_chunks(ts_conn) == [True]
    assert rows(ts_conn, "SELECT sum(value) FROM observation") == [(177.0,)]  # 120 + 50 + 7
    assert rows(ts_conn, "SELECT count(*) FROM observation_history") == [(1,)]


def test_an_upsert_racing_another_writer_into_a_compressed_chunk_revises_and_keeps_history(
    ts_conn: psycopg.Connection, ts_url: str
) -> None:
    """Another writer inserts the same new identity first: our insert waits for it, hits the unique key,
    and the pipeline's fallback upsert (INSERT … ON CONFLICT DO UPDATE) runs on the compressed chunk."""
    push(ts_conn, [{"ts": TS, "region": "360100", "value": 100}])
    compress_all_chunks(ts_conn)
    with psycopg.connect(ts_url) as other, psycopg.connect(ts_url) as ours:
        other.execute(
            "INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id)"
            " VALUES ('bs5g_total', 360300, 'cmcc', '', %s, 5, 0)",
            (datetime.fromisoformat(TS),),
        )  # not committed yet
        our_pid = ours.info.backend_pid
        result: list[BatchReport] = []
        writer = threading.Thread(
            target=lambda: result.append(push(ours, [{"ts": TS, "region": "360300", "value": 7}])), daemon=True
        )
        writer.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until our insert waits on the other writer's row
            waiting = rows(ts_conn, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", our_pid)
            ts_conn.commit()
            if waiting == [("Lock",)]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the pipeline's insert never waited for the concurrent writer")
        other.commit()
        writer.join(10)
    [report] = result
    assert (report.accepted, report.revised) == (0, 1)
    assert rows(ts_conn, "SELECT value FROM observation WHERE region = 360300") == [(7.0,)]
    assert rows(ts_conn, "SELECT value FROM observation_history WHERE region = 360300") == [(5.0,)]


def test_retention_drops_whole_chunks_older_than_the_limit(ts_conn: psycopg.Connection) -> None:
    push(
        ts_conn,
        [
            {"ts": "2023-01-05T12:00:00Z", "region": "360100", "value": 1},  # chunk [2023-01-05, 2023-01-12)
            {"ts": "2023-03-01T12:00:00Z", "region": "360100", "value": 2},  # chunk [2023-02-23, 2023-03-02)
        ],
    )
    compress_all_chunks(ts_conn)
    # 2023-03-15 minus 30 days = 2023-02-13: only the January chunk ends before it
    assert drop_old_partitions(ts_conn, 30, now=datetime(2023, 3, 15, tzinfo=UTC)) == 1
    assert rows(ts_conn, "SELECT value FROM observation") == [(2.0,)]


# -- indicators, rollups and progress -------------------------------------------------------------------------

METRICS_SCENARIOS = [
    metrics_scenarios.test_province_gauge_is_the_sum_of_each_citys_latest_value,
    metrics_scenarios.test_series_silent_beyond_the_staleness_limit_stops_counting_and_the_answer_says_so,
    metrics_scenarios.test_deltas_sum_over_the_period_and_ratios_are_ratios_of_sums,
    metrics_scenarios.test_series_buckets_start_at_shanghai_midnight_and_increases_count_from_start,
    metrics_scenarios.test_rollups_answer_series_like_the_observations_do_and_pick_up_late_data,
    metrics_scenarios.test_rollups_keep_a_pue_per_data_centre,
    progress_scenarios.test_target_on_pace_is_on_track,
    progress_scenarios.test_revised_observation_changes_the_result,
    progress_scenarios.test_counter_reset_does_not_give_a_negative_or_inflated_pue,
]


@pytest.mark.parametrize("scenario", METRICS_SCENARIOS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_metrics_scenario_gives_the_same_answer_on_a_hypertable(
    ts_conn: psycopg.Connection, scenario: Callable[[psycopg.Connection], None]
) -> None:
    scenario(ts_conn)


def _mixed_history(conn: psycopg.Connection) -> None:
    """Ten days of two operators' mobile traffic in Nanchang and their 5G base stations in Ganzhou."""
    days = [f"2023-03-{k:02d}T12:00:00+08:00" for k in range(1, 11)]
    for op, scale in (("cmcc", 1), ("ctcc", 2)):
        push(conn, [{"ts": t, "region": "360100", "value": 10 * scale} for t in days], op, "traffic_mobile_gb")
        push(conn, [{"ts": t, "region": "360100", "value": 5 * scale} for t in days], op, "ipv6_traffic_mobile_gb")
        push(conn, [{"ts": t, "region": "360700", "value": 100 * scale + i} for i, t in enumerate(days)], op)


def _answers(conn: psycopg.Connection) -> dict[str, object]:
    start = datetime(2023, 3, 1, tzinfo=PLAN_TZ)
    end = datetime(2023, 4, 1, tzinfo=PLAN_TZ)
    out: dict[str, object] = {
        "rollup": rows(
            conn,
            "SELECT interval, bucket, indicator, region, operator, entity, value FROM indicator_rollup"
            " WHERE bucket < '2023-04-01' ORDER BY 1, 2, 3, 4, 5, 6",
        )
    }
    for ind in ("traffic_mobile_gb", "ipv6_share_mobile", "bs5g_total", "bs5g_new"):
        out[f"{ind}/1d"] = [p.value for p in indicator_series(conn, ind, start=start, end=end, interval="1d")]
        out[f"{ind}/1mo"] = [p.value for p in indicator_series(conn, ind, start=start, end=end, interval="1mo")]
        out[f"{ind}@"] = indicator_value(conn, ind, as_of=parse_as_of("2023-03-31")).value
    return out


def test_rollups_and_series_from_compressed_chunks_equal_those_of_plain_postgresql(
    conn: psycopg.Connection, ts_conn: psycopg.Connection
) -> None:
    for c in (conn, ts_conn):
        _mixed_history(c)
    assert compress_all_chunks(ts_conn) == 3  # 1–10 March: chunks from Thursdays 23 Feb, 2 and 9 March
    for c in (conn, ts_conn):  # a revision after compression: cmcc's 5 March traffic 10 → 40
        push(c, [{"ts": "2023-03-05T12:00:00+08:00", "region": "360100", "value": 40}], "cmcc", "traffic_mobile_gb")
        assert refresh_rollups(c) > 0
    plain, timescale = _answers(conn), _answers(ts_conn)
    assert plain == timescale
    assert len(timescale["rollup"]) > 100  # type: ignore[arg-type]  # days × indicators × scopes, not empty
    assert timescale["traffic_mobile_gb/1mo"] == [330.0]  # 10 days × (10 + 20) + 30 revised
    assert timescale["bs5g_total@"] == 318.0  # latest levels on 10 March: cmcc 100 + 9, ctcc 200 + 9


def test_hourly_summaries_of_meters_in_compressed_chunks_read_as_their_readings(ts_conn: psycopg.Connection) -> None:
    """The meters' hourly summaries (series_hour, a plain table on TimescaleDB too) built from compressed
    chunks, then kept current through late readings and a revision into them."""
    data = hour_summaries.load(ts_conn, 5)
    assert compress_all_chunks(ts_conn) > 0
    refresh_rollups(ts_conn)  # builds every summary, reading the compressed chunks
    ts_conn.commit()
    hour_summaries.assert_summaries_equal_readings(ts_conn, data)
    end = hour_summaries.START + timedelta(hours=hour_summaries.HOURS)
    hour_summaries.assert_same_indicators(ts_conn, hour_summaries.START, end)
    for (metric, op, entity), points in data.items():  # into the compressed chunks
        t, v = points[len(points) // 2]
        late = (t + timedelta(seconds=3), v + 0.25)
        revised = (points[2][0], points[2][1] + 0.5)
        hour_summaries.push(ts_conn, metric, op, entity, [late, revised])
        points.append(late)
        points[2] = revised
    ts_conn.commit()
    hour_summaries.assert_same_indicators(ts_conn, hour_summaries.START, end)  # those hours read raw
    refresh_rollups(ts_conn)
    ts_conn.commit()
    hour_summaries.assert_summaries_equal_readings(ts_conn, data)
    hour_summaries.assert_same_indicators(ts_conn, hour_summaries.START, end)
