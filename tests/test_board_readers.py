"""What migration 0150 publishes for the boards: the one stale rule of a feed (iw_feed_stale, which Python's
is_stale and STALE_FACTOR name and feed_freshness reads), the metrics' cadences it needs (iw_metric, equal to
the catalogue), feed freshness per region and per operator × metric; and what 0190 publishes, every data
centre's series at once (iw_entity_series)."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest

from ingest.pipeline import IngestPipeline
from metrics import feed_freshness, refresh_rollups
from metrics.freshness import STALE_FACTOR, is_stale
from metrics.rollups import publish_catalogue
from metrics.timeutil import PLAN_TZ
from reference.catalogue import METRICS

PIPE = IngestPipeline()
T0 = datetime(2023, 3, 1, tzinfo=PLAN_TZ)


def push(conn: psycopg.Connection, metric: str, points: list[tuple[datetime, int, float]], op: str = "cmcc") -> None:
    items = [{"ts": t.isoformat(), "region": str(r), "value": v} for t, r, v in points]
    report = PIPE.submit_items(conn, items, source="test", operator=op, metric=metric)
    assert report.rejected == 0, report.rejections


@pytest.mark.parametrize("cadence_s", sorted({m.cadence_s for m in METRICS.values()}))
def test_python_and_sql_call_a_feed_stale_at_the_same_age(conn: psycopg.Connection, cadence_s: int) -> None:
    limit = STALE_FACTOR * cadence_s
    ages = [0.0, cadence_s, limit - 0.001, limit, limit + 0.001, 10.0 * cadence_s]
    for age in ages:
        row = conn.execute("SELECT iw_feed_stale(%s, %s), iw_feed_state(%s, %s)", (age, cadence_s) * 2).fetchone()
        assert row == (is_stale(age, cadence_s), "stale" if is_stale(age, cadence_s) else "fresh"), (age, cadence_s)
    # the edge itself: silent exactly twice the cadence is still fresh, a millisecond more is stale
    assert [is_stale(a, cadence_s) for a in (limit, limit + 0.001)] == [False, True]
    assert STALE_FACTOR == 2  # domain.md: stale after twice the metric's cadence


def test_the_published_cadences_equal_the_catalogue_from_the_migration_on(conn: psycopg.Connection) -> None:
    catalogue = {m.id: m.cadence_s for m in METRICS.values()}
    assert dict(conn.execute("SELECT id, cadence_s FROM iw_metric").fetchall()) == catalogue  # as migrated
    conn.execute("UPDATE iw_metric SET cadence_s = 1 WHERE id = 'bs5g_total'")
    conn.execute("INSERT INTO iw_metric VALUES ('retired_metric', 60)")
    publish_catalogue(conn)
    assert dict(conn.execute("SELECT id, cadence_s FROM iw_metric").fetchall()) == catalogue


def test_feed_freshness_reads_the_published_rule_at_its_edge(conn: psycopg.Connection) -> None:
    day = METRICS["traffic_mobile_gb"].cadence_s
    push(conn, "traffic_mobile_gb", [(T0, 360100, 1.0)])
    edge = T0 + timedelta(seconds=STALE_FACTOR * day)
    [at_edge] = feed_freshness(conn, now=edge)
    [after] = feed_freshness(conn, now=edge + timedelta(seconds=1))
    assert (at_edge.age_s, at_edge.cadence_s, at_edge.stale) == (STALE_FACTOR * day, day, False)
    assert (after.age_s, after.stale) == (STALE_FACTOR * day + 1, True)
    [before] = feed_freshness(conn, now=T0 - timedelta(hours=1))  # a clock behind the feed: age 0, fresh
    assert (before.age_s, before.stale) == (0, False)


def test_per_operator_and_metric_the_newest_region_decides(conn: psycopg.Connection) -> None:
    day = METRICS["traffic_mobile_gb"].cadence_s
    push(conn, "traffic_mobile_gb", [(T0, 360100, 1.0), (T0 + timedelta(days=2), 360700, 1.0)])
    push(conn, "traffic_mobile_gb", [(T0, 360100, 1.0)], op="ctcc")
    at = T0 + timedelta(days=3, hours=1)  # Nanchang silent 3 days (stale), Ganzhou 1 day (fresh)
    per_region = {(f.operator, f.region): f.stale for f in feed_freshness(conn, now=at)}
    assert per_region == {("cmcc", 360100): True, ("cmcc", 360700): False, ("ctcc", 360100): True}
    rows = conn.execute(
        "SELECT operator, metric, age_s, cadence_s, regions, stale, state FROM iw_feed_freshness_by_metric(%s)"
        " ORDER BY operator",
        (at,),
    ).fetchall()
    assert rows == [
        ("cmcc", "traffic_mobile_gb", 25 * 3600.0, day, 2, False, "fresh"),
        ("ctcc", "traffic_mobile_gb", 73 * 3600.0, day, 1, True, "stale"),
    ]


def test_a_metric_the_catalogue_no_longer_has_counts_a_day_as_its_cadence(conn: psycopg.Connection) -> None:
    push(conn, "traffic_mobile_gb", [(T0, 360100, 1.0)])
    conn.execute("UPDATE feed_freshness SET metric = 'retired_metric'")
    [f] = feed_freshness(conn, now=T0 + timedelta(days=1))
    assert (f.metric, f.cadence_s, f.stale) == ("retired_metric", 86400, False)


def test_the_series_entities_are_the_data_centres_with_a_bucket_in_the_range(conn: psycopg.Connection) -> None:
    for k in range(1, 4):
        at = T0 + timedelta(days=k)
        for metric, scale in (("dc_energy_total_kwh", 1.5), ("dc_energy_it_kwh", 1.0)):
            items = [
                {"ts": at.isoformat(), "region": "360100", "value": scale * 100 * k, "entity": "dc-nc-1"},
                {"ts": at.isoformat(), "region": "360700", "value": scale * 50 * k, "entity": "dc-gz-1"},
            ]
            report = PIPE.submit_items(conn, items, source="test", operator="cmcc", metric=metric)
            assert report.rejected == 0, report.rejections
    assert refresh_rollups(conn) > 0
    listed = conn.execute(
        "SELECT DISTINCT region, operator, entity FROM iw_entity_series('dc_pue', '1d', %s, %s) ORDER BY entity",
        (T0, T0 + timedelta(days=5)),
    ).fetchall()
    assert listed == [(360700, "cmcc", "dc-gz-1"), (360100, "cmcc", "dc-nc-1")]
    later = T0 + timedelta(days=30)
    assert conn.execute(
        "SELECT count(*) FROM iw_entity_series('dc_pue', '1d', %s, %s)", (later, later + timedelta(days=5))
    ).fetchone() == (0,)


def test_every_entity_series_at_once_is_each_entity_series_where_it_holds_a_value(conn: psycopg.Connection) -> None:
    """iw_entity_series against iw_indicator_series entity by entity, on published rows written by hand: a
    cumulated increase (per entity from the range's first bucket, across an empty bucket) and a ratio, with
    the newest two days pending (read from indicator_pending, not from a stale rollup of the same day)."""
    days = [T0 + timedelta(days=k) for k in range(6)]
    cutoff = days[4]  # days 4 and 5 end after the cutoff: pending
    entities = [(360100, "cmcc", "dc-a"), (360100, "ctcc", "dc-b"), (360700, "cmcc", "dc-a")]
    for ind in ("bs5g_new", "dc_pue"):
        conn.execute("INSERT INTO pending_state VALUES (%s, '1d', %s, %s)", (ind, cutoff, T0 + timedelta(days=30)))
        for n, (region, op, dc) in enumerate(entities, 1):
            for k, t in enumerate(days):
                if k == 2 and n == 1:
                    continue  # an empty bucket
                table = "indicator_pending" if t >= cutoff else "indicator_rollup"
                conn.execute(
                    f"INSERT INTO {table} (interval, bucket, indicator, region, operator, entity, value)"
                    " VALUES ('1d', %s, %s, %s, %s, %s, %s)",
                    (t, ind, region, op, dc, 10.0 * n + k),
                )
            # a rollup of a pending day, stale: never read
            conn.execute(
                "INSERT INTO indicator_rollup (interval, bucket, indicator, region, operator, entity, value)"
                " VALUES ('1d', %s, %s, %s, %s, %s, -1e6)",
                (days[5], ind, region, op, dc),
            )
    start, end = days[1], days[5] + timedelta(days=1)
    for ind, cumulative in (("bs5g_new", True), ("dc_pue", False)):
        every = conn.execute(
            "SELECT entity, region, operator, ts, value, pending, current FROM iw_entity_series(%s, '1d', %s, %s)",
            (ind, start, end),
        ).fetchall()
        for n, (region, op, dc) in enumerate(entities, 1):
            one = conn.execute(
                "SELECT ts, value, pending, current FROM iw_indicator_series(%s, %s, %s, %s, %s, '1d', %s)"
                " WHERE value IS NOT NULL AND (%s OR ts <> %s)",
                (ind, region, op, start, end, dc, n != 1 or not cumulative, days[2]),
            ).fetchall()
            mine = sorted((t, v, p, c) for e, r, o, t, v, p, c in every if (r, o, e) == (region, op, dc))
            assert mine == one, (ind, dc)
            values = [10.0 * n + k for k in range(1, 6) if not (k == 2 and n == 1)]
            expected = [sum(values[: i + 1]) for i in range(len(values))] if cumulative else values
            assert [v for _, v, _, _ in mine] == expected, (ind, dc)
            assert [p for _, _, p, _ in mine] == [t >= cutoff for t, *_ in mine], (ind, dc)
