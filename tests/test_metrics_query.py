"""Indicator queries and rollups against a real PostgreSQL, observations written through the ingest pipeline."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest

from ingest.pipeline import IngestPipeline
from metrics import (
    breakdown,
    entities,
    feed_freshness,
    indicator_series,
    indicator_value,
    parse_as_of,
    refresh_rollups,
)
from metrics.query import published_series as series_from_rollups
from metrics.timeutil import PLAN_TZ, buckets

PIPE = IngestPipeline()


def push(
    conn: psycopg.Connection,
    metric: str,
    points: list[tuple[str, int, float]],
    operator: str = "cmcc",
    entity: str = "",
) -> None:
    items = [{"ts": ts, "region": str(r), "value": v, "entity": entity} for ts, r, v in points]
    report = PIPE.submit_items(conn, items, source="test", operator=operator, metric=metric)
    assert report.rejected == 0, report.rejections


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PLAN_TZ)


def test_province_gauge_is_the_sum_of_each_citys_latest_value(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", [("2023-05-31T00:00:00+08:00", 360100, 100), ("2023-06-30T00:00:00+08:00", 360100, 120)])
    push(conn, "bs5g_total", [("2023-06-15T00:00:00+08:00", 360700, 50)], operator="ctcc")
    v = indicator_value(conn, "bs5g_total", as_of=parse_as_of("2023-06-30"))
    assert v.value == 170 and v.series_counted == 2  # 120 + 50
    assert indicator_value(conn, "bs5g_total", operator="ctcc", as_of=parse_as_of("2023-06-30")).value == 50
    assert indicator_value(conn, "bs5g_total", region=360100, as_of=parse_as_of("2023-06-29")).value == 100


def test_series_silent_beyond_the_staleness_limit_stops_counting_and_the_answer_says_so(
    conn: psycopg.Connection,
) -> None:
    push(conn, "bs5g_total", [("2023-01-31T00:00:00+08:00", 360100, 100)])
    push(conn, "bs5g_total", [("2023-06-30T00:00:00+08:00", 360200, 40)])
    v = indicator_value(conn, "bs5g_total", as_of=parse_as_of("2023-06-30"))  # Nanchang silent 150 days > 62
    assert v.value == 40 and v.series_stale == 1
    assert v.note and "stale" in v.note


def test_deltas_sum_over_the_period_and_ratios_are_ratios_of_sums(conn: psycopg.Connection) -> None:
    push(
        conn,
        "traffic_fixed_gb",
        [("2023-01-31T00:00:00+08:00", 360100, 300), ("2023-02-28T00:00:00+08:00", 360100, 700)],
    )
    push(
        conn,
        "ipv6_traffic_fixed_gb",
        [("2023-01-31T00:00:00+08:00", 360100, 30), ("2023-02-28T00:00:00+08:00", 360100, 170)],
    )
    assert indicator_value(conn, "traffic_fixed_gb", as_of=parse_as_of("2023-02-28")).value == 1000
    # (30 + 170) / (300 + 700) = 20 %, not the mean of 10 % and 24.3 %
    assert indicator_value(conn, "ipv6_share_fixed", as_of=parse_as_of("2023-02-28")).value == pytest.approx(20.0)


def test_province_population_comes_from_the_reference_series(conn: psycopg.Connection) -> None:
    push(conn, "population", [("2022-12-31T00:00:00+08:00", 360000, 1000)], operator="admin")
    push(conn, "iot_connections_pan", [("2023-06-30T00:00:00+08:00", 360100, 1500)])
    assert indicator_value(conn, "population", as_of=parse_as_of("2023-06-30")).value == 1000
    assert indicator_value(conn, "iot_per_capita", as_of=parse_as_of("2023-06-30")).value == pytest.approx(1.5)


def test_breakdown_by_city_and_operator(conn: psycopg.Connection) -> None:
    push(conn, "users_5g", [("2023-06-30T00:00:00+08:00", 360100, 30), ("2023-06-30T00:00:00+08:00", 360700, 70)])
    push(conn, "users_5g", [("2023-06-30T00:00:00+08:00", 360700, 5)], operator="cucc")
    by_city = breakdown(conn, "users_5g", by="region", as_of=parse_as_of("2023-06-30"))
    assert [(c.key, c.value) for c in by_city[:2]] == [("360700", 75), ("360100", 30)]
    by_op = breakdown(conn, "users_5g", by="operator", as_of=parse_as_of("2023-06-30"))
    assert [(c.key, c.value) for c in by_op] == [("cmcc", 100), ("cucc", 5)]


def test_series_buckets_start_at_shanghai_midnight_and_increases_count_from_start(conn: psycopg.Connection) -> None:
    push(
        conn,
        "bs5g_total",
        [
            ("2022-12-31T00:00:00+08:00", 360100, 100),
            ("2023-01-31T00:00:00+08:00", 360100, 110),
            ("2023-03-31T00:00:00+08:00", 360100, 130),
        ],
    )
    pts = indicator_series(conn, "bs5g_total", start=d("2023-01-01"), end=d("2023-04-01"), interval="1mo")
    assert [p.ts for p in pts] == [d("2023-01-01"), d("2023-02-01"), d("2023-03-01")]
    assert [p.value for p in pts] == [110, 110, 130]  # level at each month's end
    new = indicator_series(conn, "bs5g_new", start=d("2023-01-01"), end=d("2023-04-01"), interval="1mo")
    assert [p.value for p in new] == [10, 10, 30]


def test_rollups_answer_series_like_the_observations_do_and_pick_up_late_data(conn: psycopg.Connection) -> None:
    days = [f"2023-03-{k:02d}T12:00:00+08:00" for k in range(1, 11)]
    for op, scale in (("cmcc", 1), ("ctcc", 2)):
        push(conn, "traffic_mobile_gb", [(t, 360100, 10 * scale) for t in days], operator=op)
        push(conn, "ipv6_traffic_mobile_gb", [(t, 360100, 5 * scale) for t in days], operator=op)
        push(conn, "bs5g_total", [(t, 360700, 100 * scale + i) for i, t in enumerate(days)], operator=op)
    start, end = d("2023-03-01"), d("2023-03-11")
    starts = buckets(start, end, "1d")
    assert (
        series_from_rollups(
            conn, "traffic_mobile_gb", region=360000, operator=None, entity=None, starts=starts, interval="1d"
        )
        is None
    )  # changes not yet rolled up
    raw = {
        i: indicator_series(conn, i, start=start, end=end, interval="1d")
        for i in ("traffic_mobile_gb", "ipv6_share_mobile", "bs5g_total", "bs5g_new")
    }
    assert refresh_rollups(conn) > 0
    assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
    for ind, expected in raw.items():
        rolled = series_from_rollups(
            conn, ind, region=360000, operator=None, entity=None, starts=starts, interval="1d", increase_start=start
        )
        assert rolled == [p.value for p in expected], ind
    assert [p.value for p in raw["traffic_mobile_gb"]] == [30.0] * 10  # 10 + 20 GB a day
    assert raw["ipv6_share_mobile"][0].value == pytest.approx(50.0)
    month = indicator_series(
        conn, "traffic_mobile_gb", operator="ctcc", start=start, end=d("2023-04-01"), interval="1mo"
    )
    assert [p.value for p in month] == [200.0]
    # a late, backfilled day changes the day and the month after the next refresh
    push(conn, "traffic_mobile_gb", [("2023-03-20T12:00:00+08:00", 360100, 1000)], operator="ctcc")
    assert refresh_rollups(conn) > 0
    month = indicator_series(
        conn, "traffic_mobile_gb", operator="ctcc", start=start, end=d("2023-04-01"), interval="1mo"
    )
    assert [p.value for p in month] == [1200.0]
    rows = conn.execute(
        "SELECT value FROM indicator_rollup WHERE indicator = 'traffic_mobile_gb' AND interval = '1mo'"
        " AND region = 360000 AND operator = 'ctcc'"
    ).fetchall()
    assert rows == [(1200.0,)]


def test_rollups_keep_a_pue_per_data_centre(conn: psycopg.Connection) -> None:
    ts = [f"2023-03-0{k}T00:00:00+08:00" for k in (1, 2, 3)]
    push(conn, "dc_energy_total_kwh", [(t, 360700, v) for t, v in zip(ts, [0, 150, 300], strict=True)], entity="dc1")
    push(conn, "dc_energy_it_kwh", [(t, 360700, v) for t, v in zip(ts, [0, 100, 200], strict=True)], entity="dc1")
    refresh_rollups(conn)
    rows = conn.execute(
        "SELECT bucket, value FROM indicator_rollup WHERE indicator = 'dc_pue' AND interval = '1d'"
        " AND region = 360700 AND operator = 'cmcc' AND entity = 'dc1' ORDER BY bucket"
    ).fetchall()
    assert [v for _, v in rows] == [1.5, 1.5]  # 150/100 on 2 and 3 March
    assert entities(conn, "dc_energy_it_kwh") == [(360700, "cmcc", "dc1")]


def test_feed_freshness_marks_feeds_silent_longer_than_twice_their_cadence(conn: psycopg.Connection) -> None:
    push(conn, "traffic_mobile_gb", [("2023-03-01T00:00:00+08:00", 360100, 1)])
    [f] = feed_freshness(conn, now=d("2023-03-02T12:00:00"))
    assert (f.operator, f.metric, f.region, f.cadence_s) == ("cmcc", "traffic_mobile_gb", 360100, 86400)
    assert f.age_s == pytest.approx(36 * 3600) and f.stale is False
    assert feed_freshness(conn, now=d("2023-03-04T00:00:00"))[0].stale is True


def test_refresh_is_incremental_and_rollups_serve_data_centre_series(conn: psycopg.Connection) -> None:
    ts = [f"2023-03-0{k}T00:00:00+08:00" for k in (1, 2, 3)]
    push(conn, "dc_energy_total_kwh", [(t, 360700, v) for t, v in zip(ts, [0, 120, 240], strict=True)], entity="dc1")
    push(conn, "dc_energy_it_kwh", [(t, 360700, v) for t, v in zip(ts, [0, 100, 200], strict=True)], entity="dc1")
    assert refresh_rollups(conn) > 0
    assert refresh_rollups(conn) == 0  # nothing changed since
    pts = indicator_series(
        conn,
        "dc_pue",
        region=360700,
        operator="cmcc",
        entity="dc1",
        start=d("2023-03-01"),
        end=d("2023-03-04"),
        interval="1d",
    )
    assert [p.value for p in pts] == [None, 1.2, 1.2]  # the first reading has no base
    assert entities(conn, "dc_energy_it_kwh", region=360100) == []
