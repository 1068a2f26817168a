"""The per-series hourly summaries (series_hour, migration 0200; metrics.hours): a read of whole hours from the
summaries, with the raw readings of the hours not summarized yet, gives every indicator of the meters the same
value in every bucket as the raw readings do; the refresh keeps the summaries equal to their readings (late
readings, revisions, resets); a read between two refreshes reads raw only the hours the refresh has not seen."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from ingest.pipeline import IngestPipeline
from metrics import refresh_rollups
from metrics.compute import Series, counter_increments
from metrics.hours import summarized_metrics, whole_hours
from metrics.indicators import Scope, SeriesKey, evaluate
from metrics.readers import fetch_series
from metrics.rollups import mark_all_dirty
from metrics.timeutil import Interval, buckets, epoch, next_bucket
from storage.maintenance import drop_old_partitions

PIPE = IngestPipeline()
START = datetime(2023, 3, 1, 16, tzinfo=UTC)  # 00:00 in Asia/Shanghai: plan days are whole UTC hours
METERS = ("dc_energy_total_kwh", "dc_energy_it_kwh")
CENTRES = [(360100, "cmcc", "dc-a"), (360100, "ctcc", "dc-b"), (360200, "cmcc", "dc-c")]
HOURS = 60


def push(conn: psycopg.Connection, metric: str, op: str, entity: str, points: list[tuple[datetime, float]]) -> None:
    by_region: dict[int, list[dict[str, object]]] = {}
    region = next(r for r, o, e in CENTRES if (o, e) == (op, entity))
    by_region[region] = [{"ts": t.isoformat(), "region": str(region), "value": v, "entity": entity} for t, v in points]
    report = PIPE.submit_items(conn, by_region[region], source="test", operator=op, metric=metric)
    assert report.rejected == 0, report.rejections


def meter_readings(rng: random.Random, hours: int) -> list[tuple[datetime, float]]:
    """A cumulative meter: 0–6 readings an hour at random minutes (some hours silent, some with one reading),
    rises of random size, now and then a reset to a small value."""
    out, value = [], rng.uniform(0, 1000)
    for h in range(hours):
        for minute in sorted(rng.sample(range(60), rng.choice([0, 1, 1, 2, 4, 6]))):
            value = rng.uniform(0, 5) if rng.random() < 0.06 else value + rng.uniform(0, 40)
            out.append((START + timedelta(hours=h, minutes=minute, seconds=rng.choice([0, 17])), round(value, 3)))
    return out


def load(conn: psycopg.Connection, seed: int) -> dict[tuple[str, str, str], list[tuple[datetime, float]]]:
    rng = random.Random(seed)
    data = {}
    for _, op, entity in CENTRES:
        for metric in METERS:
            data[(metric, op, entity)] = meter_readings(rng, HOURS)
            push(conn, metric, op, entity, data[(metric, op, entity)])
    return data


def raw_and_summarized(
    conn: psycopg.Connection, since: datetime, until: datetime, span: Interval = "1h"
) -> tuple[dict[SeriesKey, Series], dict[SeriesKey, Series]]:
    prior = since - timedelta(days=1)
    raw = fetch_series(conn, list(METERS), None, since, until, summaries=False, prior_since=prior)
    hours = fetch_series(conn, list(METERS), None, since, until, prior_since=prior, span=span)
    return raw, hours


def assert_same_indicators(conn: psycopg.Connection, since: datetime, until: datetime) -> None:
    """Hours read as they are for hourly buckets, composed per plan day for daily ones."""
    scopes = [Scope(360000), Scope(360100), Scope(360100, "cmcc"), *(Scope(r, o, e) for r, o, e in CENTRES)]
    for interval in ("1h", "1d"):
        raw, hours = raw_and_summarized(conn, since, until, interval)
        starts = [t for t in buckets(since, until, interval) if next_bucket(t, interval) <= until]
        lo = np.array([epoch(t) for t in starts])
        hi = np.array([epoch(next_bucket(t, interval)) for t in starts])
        for indicator in ("dc_pue", *METERS):
            for scope in scopes:
                a = evaluate(raw, indicator, scope, lo, hi).combined
                b = evaluate(hours, indicator, scope, lo, hi).combined
                where = (indicator, interval, scope, since)
                np.testing.assert_allclose(b.value, a.value, rtol=1e-9, atol=1e-9, err_msg=str(where))
                assert (b.counted > 0).tolist() == (a.counted > 0).tolist(), where


def summaries_of_readings(points: list[tuple[datetime, float]]) -> dict[datetime, tuple[int, float, float, float, int]]:
    """What series_hour should hold for one series, computed here from its readings."""
    by_hour: dict[datetime, list[tuple[datetime, float]]] = {}
    for t, v in sorted(points):
        by_hour.setdefault(t.replace(minute=0, second=0, microsecond=0), []).append((t, v))
    out = {}
    for hour, pts in by_hour.items():
        values = np.array([v for _, v in pts])
        inc = float(counter_increments(values).sum())
        resets = int((values[1:] < values[:-1]).sum())
        out[hour] = (len(pts), pts[0][1], pts[-1][1], inc, resets)
    return out


def stored_summaries(conn: psycopg.Connection, metric: str, op: str, entity: str) -> dict[datetime, tuple]:
    rows = conn.execute(
        "SELECT h.hour, h.readings, h.first_value, h.last_value, h.increase, h.resets"
        " FROM series_hour h JOIN series s ON s.id = h.series_id"
        " WHERE s.metric = %s AND s.operator = %s AND s.entity = %s",
        (metric, op, entity),
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def assert_summaries_equal_readings(conn: psycopg.Connection, data: dict) -> None:
    for (metric, op, entity), points in data.items():
        expected = summaries_of_readings(points)
        stored = stored_summaries(conn, metric, op, entity)
        assert stored.keys() == expected.keys(), (metric, entity)
        for hour, (n, first, last, inc, resets) in expected.items():
            s = stored[hour]
            assert (s[0], s[4]) == (n, resets), (metric, entity, hour)
            assert s[1:4] == pytest.approx((first, last, inc), rel=1e-12, abs=1e-9), (metric, entity, hour)


def test_only_sub_daily_meters_are_summarized_and_only_over_whole_hours() -> None:
    assert summarized_metrics() == tuple(sorted(METERS))
    assert whole_hours(START, START + timedelta(hours=3))
    assert not whole_hours(START, START + timedelta(minutes=90))
    assert not whole_hours(START + timedelta(seconds=1), START + timedelta(hours=3))
    assert not whole_hours(START, START)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_whole_hours_read_from_summaries_give_the_indicators_of_the_readings(
    conn: psycopg.Connection, seed: int
) -> None:
    data = load(conn, seed)
    raw, hours = raw_and_summarized(conn, START, START + timedelta(hours=HOURS))
    assert {k: s.ts.tolist() for k, s in hours.items()} == {k: s.ts.tolist() for k, s in raw.items()}  # none yet
    refresh_rollups(conn)  # the first refresh builds every summary
    assert conn.execute("SELECT metric FROM series_hour_state ORDER BY 1").fetchall() == [(m,) for m in sorted(METERS)]
    conn.commit()
    assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] == 0
    assert_summaries_equal_readings(conn, data)
    end = START + timedelta(hours=HOURS)
    for since in (START, START + timedelta(hours=7), START + timedelta(hours=24)):
        assert_same_indicators(conn, since, end)
    raw, hours = raw_and_summarized(conn, START, end)
    assert sum(len(s) for s in hours.values()) < 0.8 * sum(len(s) for s in raw.values())  # summaries were read
    _, days = raw_and_summarized(conn, START, end, "1d")
    assert sum(len(s) for s in days.values()) < 0.5 * sum(len(s) for s in hours.values())  # composed per day

    # between two refreshes: late readings into summarized hours, a revision, the newest hour
    rng = random.Random(seed + 100)
    for (metric, op, entity), points in data.items():
        t, v = rng.choice(points[len(points) // 2 :])
        late = [(t + timedelta(seconds=5), v + 1.0), (START + timedelta(hours=HOURS, minutes=10), points[-1][1] + 9)]
        revised = (points[3][0], points[3][1] + 0.5)
        push(conn, metric, op, entity, [*late, revised])
        points.extend(late)
        points[3] = revised
    conn.commit()
    end = START + timedelta(hours=HOURS + 1)
    for since in (START, START + timedelta(hours=30)):
        assert_same_indicators(conn, since, end)
    refresh_rollups(conn)
    conn.commit()
    assert_summaries_equal_readings(conn, data)
    assert_same_indicators(conn, START, end)


def test_a_reset_within_an_hour_and_an_hour_of_one_reading_read_as_their_readings(conn: psycopg.Connection) -> None:
    h = START
    total = [(h, 100.0), (h + timedelta(minutes=10), 130.0), (h + timedelta(minutes=20), 4.0),
             (h + timedelta(minutes=50), 10.0), (h + timedelta(hours=1, minutes=5), 12.0),
             (h + timedelta(hours=4, minutes=30), 3.0), (h + timedelta(hours=4, minutes=40), 1.0)]  # fmt: skip
    it = [(t, v / 2) for t, v in total]
    push(conn, "dc_energy_total_kwh", "cmcc", "dc-a", total)
    push(conn, "dc_energy_it_kwh", "cmcc", "dc-a", it)
    refresh_rollups(conn)
    conn.commit()
    summaries = stored_summaries(conn, "dc_energy_total_kwh", "cmcc", "dc-a")
    # 30 up, a reset to 4 (counted as 4), 6 up; the next hour's one reading; within hour 4, a reset to 1
    assert summaries[h] == (4, 100.0, 10.0, 40.0, 1)
    assert summaries[h + timedelta(hours=1)] == (1, 12.0, 12.0, 0.0, 0)
    assert summaries[h + timedelta(hours=4)] == (2, 3.0, 1.0, 1.0, 1)
    raw, hours = raw_and_summarized(conn, h, h + timedelta(hours=6))
    key = ("dc_energy_total_kwh", 360100, "cmcc", "dc-a")
    lo = np.array([epoch(h + timedelta(hours=k)) for k in range(6)])
    hi = lo + 3600
    from metrics.compute import volumes

    assert volumes(hours[key], "counter", lo, hi)[0].tolist() == volumes(raw[key], "counter", lo, hi)[0].tolist()
    assert volumes(raw[key], "counter", lo, hi)[0].tolist() == [
        40.0,
        2.0,
        0.0,
        0.0,
        4.0,
        0.0,
    ]  # 4: resets to 3, then to 1
    assert_same_indicators(conn, h, h + timedelta(hours=6))


def test_a_full_rebuild_marks_every_hour_and_summarizes_it_again(conn: psycopg.Connection) -> None:
    data = load(conn, 7)
    refresh_rollups(conn)
    conn.commit()
    conn.execute("UPDATE series_hour SET increase = increase + 1000, readings = readings + 1")  # damaged
    assert mark_all_dirty(conn) > 0
    marked = conn.execute("SELECT count(*) FROM rollup_pending WHERE metric = ANY(%s)", (list(METERS),)).fetchone()
    summarized = conn.execute(
        "SELECT count(DISTINCT (s.metric, h.hour)) FROM series_hour h JOIN series s ON s.id = h.series_id"
    ).fetchone()
    assert marked == summarized  # every hour with readings, not only the first of each day
    refresh_rollups(conn)
    conn.commit()
    assert_summaries_equal_readings(conn, data)


def test_a_row_inserted_into_the_observation_view_is_marked_for_the_refresh(conn: psycopg.Connection) -> None:
    load(conn, 11)
    refresh_rollups(conn)
    conn.commit()
    at = START + timedelta(hours=3, minutes=59)
    conn.execute(
        "INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id)"
        " VALUES ('dc_energy_total_kwh', 360100, 'cmcc', 'dc-a', %s, 1e6, 0)",
        (at,),
    )
    conn.commit()
    assert conn.execute("SELECT metric, day, hour FROM rollup_dirty").fetchall() == [
        ("dc_energy_total_kwh", at.date(), at.hour)
    ]
    assert_same_indicators(conn, START, START + timedelta(hours=HOURS))


def test_retention_forgets_the_summaries_of_the_readings_it_dropped(conn: psycopg.Connection) -> None:
    old, kept = datetime(2023, 1, 10, 3, tzinfo=UTC), datetime(2023, 3, 10, 3, tzinfo=UTC)
    conn.execute("SELECT iw_ensure_partitions(%s, %s)", (old, kept + timedelta(days=1)))
    push(conn, "dc_energy_total_kwh", "cmcc", "dc-a", [(old, 1.0), (old + timedelta(minutes=5), 2.0), (kept, 3.0)])
    refresh_rollups(conn)
    conn.commit()
    assert set(stored_summaries(conn, "dc_energy_total_kwh", "cmcc", "dc-a")) == {old, kept}
    assert drop_old_partitions(conn, 30, now=datetime(2023, 3, 15, tzinfo=UTC)) >= 1  # January's
    assert set(stored_summaries(conn, "dc_energy_total_kwh", "cmcc", "dc-a")) == {kept}
