"""Hourly rollups of the data-centre meters and series read partly from the rollups while changes are
pending: every answer is compared with the one computed from the observations (real PostgreSQL, readings
written through the ingest pipeline)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import psycopg
import pytest

from ingest.pipeline import IngestPipeline
from metrics import indicator_series, refresh_rollups
from metrics.indicators import Scope
from metrics.query import compute_series, running_sum
from metrics.query import published_series as series_from_rollups
from metrics.readers import fetch_indicator_inputs
from metrics.rollups import change_reach, hourly_indicators, split_at, stale_from
from metrics.timeutil import PLAN_TZ, Interval, buckets, start_of_day
from storage.migrate import MIGRATIONS_DIR

PIPE = IngestPipeline()
#: (city, operator, data centre)
CENTRES = [(360100, "cmcc", "dc-nc-1"), (360100, "ctcc", "dc-nc-2"), (360700, "cmcc", "dc-gz-1")]


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PLAN_TZ)


def push(
    conn: psycopg.Connection, metric: str, points: list[tuple[datetime, int, float]], operator: str, entity: str = ""
) -> None:
    items = [{"ts": t.isoformat(), "region": str(r), "value": v, "entity": entity} for t, r, v in points]
    report = PIPE.submit_items(conn, items, source="test", operator=operator, metric=metric)
    assert report.rejected == 0, report.rejections


def push_meters(conn: psycopg.Connection, start: datetime, end: datetime, seed: int, base: float = 0.0) -> None:
    """Both meters of every centre every 5 minutes in [start, end): whole kWh increments that vary, so the
    hourly PUE differs from hour to hour and from centre to centre."""
    rng = np.random.default_rng(seed)
    ts = [start + timedelta(minutes=5 * i) for i in range(int((end - start).total_seconds() // 300))]
    for region, op, dc in CENTRES:
        it = base + np.cumsum(rng.integers(40, 60, len(ts)))
        total = base + np.cumsum(rng.integers(55, 90, len(ts)))
        push(conn, "dc_energy_it_kwh", [(t, region, float(v)) for t, v in zip(ts, it, strict=True)], op, dc)
        push(conn, "dc_energy_total_kwh", [(t, region, float(v)) for t, v in zip(ts, total, strict=True)], op, dc)


def raw(
    conn: psycopg.Connection,
    indicator: str,
    starts: list[datetime],
    interval: Interval,
    region: int = 360000,
    operator: str | None = None,
    entity: str | None = None,
) -> list[float | None]:
    """What indicator_series answers without rollups."""
    return compute_series(conn, indicator, Scope(region, operator, entity), starts, interval, increase_start=starts[0])


def rolled(
    conn: psycopg.Connection,
    indicator: str,
    starts: list[datetime],
    interval: Interval,
    region: int = 360000,
    operator: str | None = None,
    entity: str | None = None,
) -> list[float | None] | None:
    return series_from_rollups(
        conn,
        indicator,
        region=region,
        operator=operator,
        entity=entity,
        starts=starts,
        interval=interval,
        increase_start=starts[0],
    )


def pending_days(conn: psycopg.Connection) -> list[date]:
    return [r[0] for r in conn.execute("SELECT DISTINCT day FROM rollup_dirty ORDER BY 1")]


def mark(conn: psycopg.Connection, indicator: str, interval: str, bucket: datetime, value: float) -> None:
    """Overwrite one province-level rollup row, to see whether an answer is read from the rollups."""
    cur = conn.execute(
        "UPDATE indicator_rollup SET value = %s WHERE indicator = %s AND interval = %s AND region = 360000"
        " AND operator = '' AND entity = '' AND bucket = %s",
        (value, indicator, interval, bucket),
    )
    assert cur.rowcount == 1


# -- pure parts ---------------------------------------------------------------------------------------------


def test_hourly_rollups_are_kept_for_the_indicators_fed_only_by_the_five_minute_meters() -> None:
    assert sorted(hourly_indicators()) == ["dc_energy_it_kwh", "dc_energy_total_kwh", "dc_pue"]


def test_a_pending_change_makes_the_rollups_stale_from_its_reach_before_it() -> None:
    assert stale_from(None) is None
    two_hours = timedelta(hours=2)
    assert stale_from(d("2023-03-10T05:00:00"), two_hours) == d("2023-03-10T03:00:00")
    # gauge levels carried through the 5th, the request needs the 8th: from the 6th
    assert stale_from(None, two_hours, date(2023, 3, 5), date(2023, 3, 8)) == d("2023-03-06")
    assert stale_from(d("2023-03-10"), two_hours, date(2023, 3, 5), date(2023, 3, 8)) == d("2023-03-06")
    assert stale_from(d("2023-03-03"), two_hours, date(2023, 3, 5), date(2023, 3, 8)) == d("2023-03-02T22:00:00")
    assert stale_from(None, two_hours, date(2023, 3, 8), date(2023, 3, 8)) is None


def test_a_change_reaches_back_an_hour_or_the_interval_a_volume_reports() -> None:
    assert change_reach("dc_pue") == timedelta(hours=1)  # counters: only the buckets after a reading
    assert change_reach("bs5g_new") == timedelta(hours=1)  # gauge levels likewise
    assert change_reach("ipv6_share_mobile") == timedelta(hours=25)  # daily volumes cover the day before them


def test_the_rollups_answer_the_buckets_that_end_by_the_cutoff() -> None:
    days = buckets(d("2023-03-01"), d("2023-03-06"), "1d")
    assert split_at(days, "1d", None) == 5
    assert split_at(days, "1d", d("2023-03-04")) == 3
    assert split_at(days, "1d", d("2023-03-04T12:00:00")) == 3  # the 4th is not over by then
    assert split_at(days, "1d", d("2023-02-20")) == 0
    months = buckets(d("2023-01-01"), d("2023-04-01"), "1mo")
    assert split_at(months, "1mo", d("2023-03-09")) == 2


def test_increases_are_summed_from_a_base_and_stay_none_until_something_counted() -> None:
    assert running_sum([None, 2.0, None, 3.0]) == [None, 2.0, 2.0, 5.0]
    assert running_sum([None, 1.0], base=4.0) == [4.0, 5.0]
    assert running_sum([None], base=None) == [None]


# -- against the database -----------------------------------------------------------------------------------


def test_hourly_pue_comes_from_the_rollups_at_region_level_and_equals_the_observations(
    conn: psycopg.Connection,
) -> None:
    push_meters(conn, d("2023-03-01"), d("2023-03-03"), seed=1)
    assert refresh_rollups(conn) > 0
    n_entity = conn.execute("SELECT count(*) FROM indicator_rollup WHERE interval = '1h' AND entity <> ''").fetchone()
    assert n_entity == (0,)  # a single centre's hourly series is computed from its readings
    starts = buckets(d("2023-03-01"), d("2023-03-03"), "1h")
    for ind in ("dc_pue", "dc_energy_total_kwh", "dc_energy_it_kwh"):
        for region, operator in ((360000, None), (360000, "cmcc"), (360100, None), (360100, "ctcc"), (360700, None)):
            expected = raw(conn, ind, starts, "1h", region, operator)
            assert rolled(conn, ind, starts, "1h", region, operator) == pytest.approx(expected), (ind, region, operator)
    pue = raw(conn, "dc_pue", starts, "1h")
    assert pue[0] is not None and len({round(v or 0, 6) for v in pue}) > 10  # a real hourly series
    mark(conn, "dc_pue", "1h", starts[5], 9.0)
    served = indicator_series(conn, "dc_pue", start=starts[0], end=d("2023-03-03"), interval="1h")
    assert served[5].value == 9.0  # read from the rollups
    # a data centre's hourly series: not rolled up, computed from the observations
    assert rolled(conn, "dc_pue", starts, "1h", 360700, "cmcc", "dc-gz-1") is None
    one = indicator_series(
        conn,
        "dc_pue",
        region=360700,
        operator="cmcc",
        entity="dc-gz-1",
        start=starts[0],
        end=d("2023-03-03"),
        interval="1h",
    )
    assert [p.value for p in one] == raw(conn, "dc_pue", starts, "1h", 360700, "cmcc", "dc-gz-1")
    # indicators fed by daily metrics have no hourly rollups
    assert rolled(conn, "traffic_mobile_gb", starts, "1h") is None


def test_hourly_pue_while_new_readings_wait_for_the_refresh_is_rollups_then_observations(
    conn: psycopg.Connection,
) -> None:
    push_meters(conn, d("2023-03-01"), d("2023-03-04"), seed=2)
    refresh_rollups(conn)
    starts = buckets(d("2023-03-01"), d("2023-03-05"), "1h")
    before = raw(conn, "dc_pue", starts, "1h")
    # the next 12 hours arrive (live meters); the refresh has not run yet
    push_meters(conn, d("2023-03-04"), d("2023-03-04T12:00:00"), seed=3, base=1e6)
    assert pending_days(conn) == [date(2023, 3, 3), date(2023, 3, 4)]  # UTC days
    expected = raw(conn, "dc_pue", starts, "1h")
    assert expected != before  # the new readings change the answer
    mark(conn, "dc_pue", "1h", starts[0], 9.0)  # far before any pending day
    got = rolled(conn, "dc_pue", starts, "1h")
    assert got is not None
    assert got[0] == 9.0  # the head comes from the rollups
    assert got[1:] == pytest.approx(expected[1:])
    for operator in (None, "cmcc", "ctcc"):
        assert rolled(conn, "dc_pue", starts, "1h", 360100, operator) == pytest.approx(
            raw(conn, "dc_pue", starts, "1h", 360100, operator)
        )
    # the pending readings begin at 16:00 UTC on the 3rd: hours of that same UTC day up to an hour before
    # them still come from the rollups (rollup_dirty keeps the hour), the hours after from the observations
    evening = starts.index(d("2023-03-03T21:00:00"))  # 13:00 UTC
    mark(conn, "dc_pue", "1h", starts[evening], 9.0)
    got = rolled(conn, "dc_pue", starts, "1h")
    assert got is not None
    assert got[evening] == 9.0
    assert got[evening + 4] == pytest.approx(expected[evening + 4])  # 01:00 on the 4th, from the observations
    assert got[evening + 1 :] == pytest.approx(expected[evening + 1 :])


def test_a_daily_ratio_with_its_last_day_pending_takes_that_day_from_the_observations(
    conn: psycopg.Connection,
) -> None:
    days = [d(f"2023-03-{k:02d}T12:00:00") for k in range(1, 11)]
    for op, scale in (("cmcc", 1), ("ctcc", 3)):
        push(conn, "traffic_mobile_gb", [(t, 360100, 100.0 * scale + k) for k, t in enumerate(days)], op)
        push(conn, "ipv6_traffic_mobile_gb", [(t, 360100, 40.0 * scale + 2 * k) for k, t in enumerate(days)], op)
    refresh_rollups(conn)
    starts = buckets(d("2023-03-01"), d("2023-03-11"), "1d")
    stale = rolled(conn, "ipv6_share_mobile", starts, "1d")
    push(conn, "ipv6_traffic_mobile_gb", [(d("2023-03-10T18:00:00"), 360100, 500.0)], "ctcc")  # a late reading
    assert pending_days(conn) == [date(2023, 3, 10)]
    for ind in ("ipv6_share_mobile", "ipv6_traffic_mobile_gb"):
        for operator in (None, "ctcc"):
            expected = raw(conn, ind, starts, "1d", operator=operator)
            assert rolled(conn, ind, starts, "1d", operator=operator) == pytest.approx(expected), (ind, operator)
    assert stale is not None and stale[-1] != pytest.approx(raw(conn, "ipv6_share_mobile", starts, "1d")[-1])
    mark(conn, "ipv6_share_mobile", "1d", starts[7], 1.0)  # the 8th: before the margin day (9th)
    got = rolled(conn, "ipv6_share_mobile", starts, "1d")
    assert got is not None and got[7] == 1.0
    assert (
        indicator_series(conn, "ipv6_share_mobile", start=starts[0], end=d("2023-03-11"), interval="1d")[7].value == 1.0
    )


def test_an_increase_with_a_pending_tail_continues_the_running_sum_of_the_rolled_up_buckets(
    conn: psycopg.Connection,
) -> None:
    days = [d(f"2023-03-{k:02d}T09:00:00") for k in range(1, 21)]
    push(conn, "bs5g_total", [(d("2023-02-28T09:00:00"), 360100, 1000.0)], "cmcc")
    push(conn, "bs5g_total", [(t, 360100, 1000.0 + 7 * k) for k, t in enumerate(days, 1)], "cmcc")
    push(conn, "bs5g_total", [(t, 360700, 500.0 + 3 * k) for k, t in enumerate(days[::2], 1)], "ctcc")
    refresh_rollups(conn)
    starts = buckets(d("2023-03-01"), d("2023-03-23"), "1d")
    # the last days revised and extended, not yet refreshed
    push(
        conn,
        "bs5g_total",
        [(d("2023-03-19T09:00:00"), 360100, 1200.0), (d("2023-03-21T09:00:00"), 360100, 1250.0)],
        "cmcc",
    )
    push(conn, "bs5g_total", [(d("2023-03-22T09:00:00"), 360700, 400.0)], "ctcc")
    assert pending_days(conn) == [date(2023, 3, 19), date(2023, 3, 21), date(2023, 3, 22)]
    for operator in (None, "cmcc", "ctcc"):
        expected = raw(conn, "bs5g_new", starts, "1d", operator=operator)
        assert rolled(conn, "bs5g_new", starts, "1d", operator=operator) == pytest.approx(expected), operator
    expected = raw(conn, "bs5g_new", starts, "1d")
    assert expected[-1] == pytest.approx((1250 - 1000) + (400 - 503))  # the tail really changed
    served = indicator_series(conn, "bs5g_new", start=starts[0], end=d("2023-03-23"), interval="1d")
    assert [p.value for p in served] == pytest.approx(expected)
    mark(conn, "bs5g_new", "1d", starts[3], 100.0)  # the 4th: the head, rolled up (7 + 3 before)
    got = rolled(conn, "bs5g_new", starts, "1d")
    assert got is not None and got[-1] == pytest.approx(expected[-1] + 100.0 - 7.0)  # the tail adds to the head


def test_a_gauge_whose_levels_are_carried_only_part_of_the_way_takes_the_rest_from_the_observations(
    conn: psycopg.Connection,
) -> None:
    push(conn, "bs5g_total", [(d(f"2023-03-{k:02d}T09:00:00"), 360100, 100.0 + k) for k in (1, 3, 9, 12)], "cmcc")
    push(conn, "users_5g", [(d(f"2023-03-{k:02d}T09:00:00"), 360700, 50.0 * k) for k in (2, 6)], "ctcc")
    refresh_rollups(conn)
    # as if the refresh had carried the levels only through the 5th (the scheduler behind)
    conn.execute("UPDATE rollup_state SET computed_through = '2023-03-05' WHERE indicator = 'bs5g_total'")
    conn.execute("DELETE FROM indicator_rollup WHERE indicator = 'bs5g_total' AND bucket >= %s", (d("2023-03-06"),))
    assert pending_days(conn) == []
    starts = buckets(d("2023-03-01"), d("2023-03-16"), "1d")
    for operator in (None, "cmcc"):
        expected = raw(conn, "bs5g_total", starts, "1d", operator=operator)
        assert rolled(conn, "bs5g_total", starts, "1d", operator=operator) == expected, operator
    assert raw(conn, "bs5g_total", starts, "1d")[-1] == 112.0
    mark(conn, "bs5g_total", "1d", starts[4], 1.0)  # the 5th is carried: read from the rollups
    got = rolled(conn, "bs5g_total", starts, "1d")
    assert got is not None and got[4] == 1.0 and got[5] == 103.0
    months = buckets(d("2023-01-01"), d("2023-04-01"), "1mo")
    assert rolled(conn, "bs5g_total", months, "1mo") == raw(conn, "bs5g_total", months, "1mo")


def test_migration_0070_widens_the_interval_check_and_queues_the_meters_days_for_their_hourly_buckets(
    conn: psycopg.Connection,
) -> None:
    push_meters(conn, d("2023-03-01T06:00:00"), d("2023-03-02T12:00:00"), seed=4)
    refresh_rollups(conn)
    hourly = "SELECT bucket, indicator, region, operator, value FROM indicator_rollup WHERE interval = '1h' ORDER BY 1, 2, 3, 4"
    built = conn.execute(hourly).fetchall()
    assert built
    # the state before the migration: no hourly rows, the old check
    conn.execute("DELETE FROM indicator_rollup WHERE interval = '1h'")
    conn.execute("ALTER TABLE indicator_rollup DROP CONSTRAINT indicator_rollup_interval_check")
    conn.execute(
        "ALTER TABLE indicator_rollup ADD CONSTRAINT indicator_rollup_interval_check CHECK (interval IN ('1d', '1mo'))"
    )
    [path] = MIGRATIONS_DIR.glob("0070_*.sql")
    conn.execute(path.read_text(encoding="utf-8"))
    assert pending_days(conn) == [date(2023, 2, 28), date(2023, 3, 1), date(2023, 3, 2)]  # UTC days of the readings
    refresh_rollups(conn)
    assert conn.execute(hourly).fetchall() == built
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO indicator_rollup (interval, bucket, indicator, region, value) VALUES ('1w', now(), 'x', 1, 0)"
        )
    conn.rollback()


def test_hourly_buckets_are_rebuilt_one_month_at_a_time_across_a_month_end(conn: psycopg.Connection) -> None:
    push_meters(conn, d("2023-03-31T20:00:00"), d("2023-04-01T04:00:00"), seed=5)
    refresh_rollups(conn)
    starts = buckets(d("2023-03-31T20:00:00"), d("2023-04-01T04:00:00"), "1h")
    got = rolled(conn, "dc_pue", starts, "1h")
    assert got is not None and None not in got
    assert got == pytest.approx(raw(conn, "dc_pue", starts, "1h"))
    assert start_of_day(date(2023, 4, 1)) in starts


def test_a_short_window_probes_the_meters_bases_and_answers_as_a_pass_over_the_whole_look_back(
    conn: psycopg.Connection,
) -> None:
    push_meters(conn, d("2023-03-01"), d("2023-03-03"), seed=5)
    # one more centre whose meters went silent at 18:00 on the 2nd, and one that read only once, long before
    push(
        conn,
        "dc_energy_it_kwh",
        [(d("2023-03-02T10:00:00"), 360100, 10.0), (d("2023-03-02T18:00:00"), 360100, 90.0)],
        "cmcc",
        "dc-silent",
    )
    push(
        conn,
        "dc_energy_total_kwh",
        [(d("2023-03-02T10:00:00"), 360100, 20.0), (d("2023-03-02T18:00:00"), 360100, 160.0)],
        "cmcc",
        "dc-silent",
    )
    starts = buckets(d("2023-03-02T20:00:00"), d("2023-03-03"), "1h")  # a live tail: four hours
    for ind, operator in (("dc_pue", None), ("dc_pue", "cmcc"), ("dc_energy_total_kwh", None)):
        scope = Scope(360000, operator)
        short = compute_series(conn, ind, scope, starts, "1h")  # window of 4 h: bases probed per meter
        # the same buckets from a fetch of more than a week (one pass over the look-back)
        wide = fetch_indicator_inputs(conn, ind, scope, d("2023-02-20"), d("2023-03-03"))
        assert compute_series(conn, ind, scope, starts, "1h", data=wide) == pytest.approx(short), (ind, operator)
        assert all(v is not None for v in short)
    # the bases are really there: each hour's energy is an increase from the reading before it
    energy = compute_series(conn, "dc_energy_total_kwh", Scope(360000), starts, "1h")
    assert all(v is not None and 0 < v < 3 * 12 * 90 for v in energy)
