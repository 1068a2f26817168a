"""Verdicts the administration acts on: no verdict on nothing, shares judged at their deadline, projections
inside the physical range, the age of the data, and breakdowns only from those who reported. Observations
go through the real ingest pipeline into a real PostgreSQL."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import psycopg
import pytest

from ingest.pipeline import IngestPipeline
from metrics import Target, evaluate_target, evaluate_targets, get_target, load_targets, parse_as_of, store_progress
from metrics.verdict import achievable_early, clamp_to_range, decide_status, is_stale, physical_range

PIPE = IngestPipeline()
MID_2023 = parse_as_of("2023-06-30")


def push(
    conn: psycopg.Connection,
    metric: str,
    points: list[tuple[str, int, float]],
    operator: str = "cmcc",
    entity: str = "",
) -> None:
    items = [{"ts": ts, "region": str(region), "value": value, "entity": entity} for ts, region, value in points]
    report = PIPE.submit_items(conn, items, source="test", operator=operator, metric=metric)
    assert report.rejected == 0, report.rejections


def month_end(y: int, m: int) -> str:
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return f"{nxt - timedelta(days=1)}T00:00:00+08:00"


def daily_meters(conn: psycopg.Connection, pue_of_day: object, first: date, last: date, entity: str = "gz-dc1") -> None:
    """Daily facility and IT meter readings of one Ganzhou data centre; IT 100 kWh a day, facility 100 × PUE."""
    fac = it = 0.0
    fac_pts, it_pts = [], []
    day = first
    while day <= last:
        ts = f"{day}T00:00:00+08:00"
        fac_pts.append((ts, 360700, round(fac, 3)))
        it_pts.append((ts, 360700, round(it, 3)))
        fac += 100 * pue_of_day((day - first).days)  # type: ignore[operator]
        it += 100
        day += timedelta(days=1)
    push(conn, "dc_energy_total_kwh", fac_pts, entity=entity)
    push(conn, "dc_energy_it_kwh", it_pts, entity=entity)


PUE_2025 = Target(
    id="t-pue-2025",
    title="Ganzhou PUE",
    indicator="dc_pue",
    region=360700,
    comparator="<",
    goal=1.5,
    start=date(2023, 1, 1),
    deadline=date(2025, 12, 31),
)


# -- no verdict on nothing --------------------------------------------------------------------------------


def test_a_2022_increase_target_without_a_2022_level_is_no_data_not_missed(conn: psycopg.Connection) -> None:
    # the only figures are the December 2022 month-end report and 2023: nothing tells the level at
    # 1 January 2022, so "new in 2022" cannot be counted (the old verdict: missed, actual 0)
    load_targets(conn)
    for m in range(1, 13):
        push(conn, "bs5g_total", [(month_end(2023, m), c, 5000 + 100 * m) for c in (360100, 360200)])
    push(conn, "bs5g_total", [(month_end(2022, 12), c, 5000) for c in (360100, 360200)])
    [p] = evaluate_targets(conn, parse_as_of("2026-12-01"), ["jx-2022-5g-new"])
    assert p.status == "no_data", p
    assert p.laggard_cities == [] and p.laggard_operators == []
    # the 2023 target has its level at start (the December report) and is judged
    [p23] = evaluate_targets(conn, parse_as_of("2026-12-01"), ["jx-2023-5g-new"])
    assert p23.status == "missed" and p23.actual == 2400


def test_a_relative_goal_takes_its_baseline_from_the_first_window_that_has_data(conn: psycopg.Connection) -> None:
    # gz-2025-5g-efficiency starts in 2022; the first traffic and energy figures are from March 2023:
    # 400 GB / 100 kWh = 4 GB/kWh → goal 4.8. The old verdict: no_data beside an actual value.
    load_targets(conn)
    for m in range(3, 7):
        ts = month_end(2023, m)
        push(conn, "traffic_mobile_gb", [(ts, 360700, 400 + 20 * m)])
        push(conn, "bs5g_energy_kwh", [(ts, 360700, 100)])
    [p] = evaluate_targets(conn, MID_2023, ["gz-2025-5g-efficiency"])
    assert p.baseline == pytest.approx(4.6)  # March: 460 GB / 100 kWh
    assert p.goal == pytest.approx(4.6 * 1.2)
    assert p.actual == pytest.approx(5.2)  # June: 520 / 100
    assert p.status != "no_data"


# -- shares and ratios are achieved at their deadline -----------------------------------------------------


def test_a_share_above_its_goal_in_september_is_on_track_and_met_now(conn: psycopg.Connection) -> None:
    load_targets(conn)
    for m in range(1, 13):  # 55.5 % … 61 % of mobile traffic over IPv6 (goal ≥ 55 % by December)
        ts = month_end(2023, m)
        push(conn, "traffic_mobile_gb", [(ts, 360100, 1000)])
        push(conn, "ipv6_traffic_mobile_gb", [(ts, 360100, 550 + 5 * m)])
    [p] = evaluate_targets(conn, parse_as_of("2023-09-30"), ["jx-2023-ipv6-mobile"])
    assert p.actual == pytest.approx(59.5)
    assert p.status == "on_track" and p.met_now
    # after the deadline the same share is achieved
    [after] = evaluate_targets(conn, parse_as_of("2024-01-15"), ["jx-2023-ipv6-mobile"])
    assert after.status == "achieved" and after.met_now


def test_a_pue_below_its_goal_but_rising_is_not_achieved(conn: psycopg.Connection) -> None:
    # PUE 1.20 in January rising 0.0015 a day: 1.47 by June 30, the trend reaches ~2.8 by the end of 2025
    daily_meters(conn, lambda k: 1.2 + 0.0015 * k, date(2023, 1, 1), date(2023, 6, 30))
    p = evaluate_target(conn, PUE_2025, MID_2023)
    assert p.met_now and p.actual is not None and p.actual < 1.5
    assert p.projected is not None and p.projected > 1.5
    assert p.status == "off_track", p


# -- projections inside the physical range ----------------------------------------------------------------


def test_a_falling_pue_is_never_projected_below_one(conn: psycopg.Connection) -> None:
    # 1.8 falling 0.005 a day: the straight line would reach −2.3 by the end of 2025
    daily_meters(conn, lambda k: max(1.05, 1.8 - 0.005 * k), date(2023, 3, 1), date(2023, 6, 30))
    p = evaluate_target(conn, PUE_2025, parse_as_of("2023-05-31"))
    assert p.projected == pytest.approx(1.0)


def test_a_falling_efficiency_is_never_projected_below_zero(conn: psycopg.Connection) -> None:
    load_targets(conn)
    target = get_target(conn, "gz-2025-5g-efficiency")
    assert target is not None
    day = date(2023, 3, 1)
    for k in range(90):  # 500 GB falling 5 GB a day, 100 kWh a day: 5 → 0.55 GB/kWh in 90 days
        ts = f"{day + timedelta(days=k)}T00:00:00+08:00"
        push(conn, "traffic_mobile_gb", [(ts, 360700, 500 - 5 * k)])
        push(conn, "bs5g_energy_kwh", [(ts, 360700, 100)])
    p = evaluate_target(conn, target, parse_as_of("2023-05-29"))
    assert p.projected == 0.0


def test_one_typo_does_not_move_the_projection(conn: psycopg.Connection) -> None:
    target = Target(
        id="t-city",
        title="Nanchang 5G",
        indicator="bs5g_total",
        region=360100,
        comparator=">=",
        goal=1200,
        start=date(2023, 1, 1),
        deadline=date(2023, 12, 31),
    )
    values = {1: 1020, 2: 1040, 3: 1060, 4: 10800, 5: 1100, 6: 1120}  # April's 10800 is a typo for 1080
    push(conn, "bs5g_total", [(month_end(2022, 12), 360100, 1000)])
    push(conn, "bs5g_total", [(month_end(2023, m), 360100, v) for m, v in values.items()])
    p = evaluate_target(conn, target, MID_2023)
    assert p.projected == pytest.approx(1240, abs=5)  # +20 a month, as without the typo


# -- the age of the data ----------------------------------------------------------------------------------


def test_progress_says_how_old_its_data_is_and_flags_it_stale(conn: psycopg.Connection) -> None:
    load_targets(conn)
    push(conn, "gigabit_users", [(month_end(2022, 12), c, 200_000) for c in (360100, 360200)])
    push(conn, "gigabit_users", [(month_end(2023, m), 360100, 200_000 + 10_000 * m) for m in (1, 2)])
    push(conn, "gigabit_users", [(month_end(2023, 2), 360200, 210_000)])
    # on 31 March the February figures are one month old (cadence 31 days): fresh
    [fresh] = evaluate_targets(conn, parse_as_of("2023-03-31"), ["jx-2023-gigabit-users"])
    assert fresh.data_as_of is not None and fresh.data_as_of.date() == date(2023, 2, 28)
    assert fresh.stale is False
    # on 30 June they are four months old: more than twice the cadence
    [old] = evaluate_targets(conn, MID_2023, ["jx-2023-gigabit-users"])
    assert old.data_as_of == fresh.data_as_of
    assert old.stale is True
    # and the stored snapshot keeps both
    store_progress(conn, [old])
    row = conn.execute(
        "SELECT stale, data_as_of, met_now FROM target_progress WHERE target_id = 'jx-2023-gigabit-users'"
    ).fetchone()
    assert row is not None and row[0] is True and row[1] == old.data_as_of and row[2] is False


# -- breakdowns only from those who reported --------------------------------------------------------------


def test_the_shortfall_is_shared_only_among_cities_that_reported(conn: psycopg.Connection) -> None:
    # goal: all 11 cities gigabit cities. 3 hold it, 2 reported 0, 6 never reported anything.
    load_targets(conn)
    push(conn, "gigabit_city", [("2023-03-31T00:00:00+08:00", c, 1) for c in (360100, 360400, 361100)], "admin")
    push(conn, "gigabit_city", [("2023-03-31T00:00:00+08:00", c, 0) for c in (360200, 360300)], "admin")
    [p] = evaluate_targets(conn, MID_2023, ["jx-2023-gigabit-cities"])
    assert p.actual == 3
    # the old breakdown: 8 cities at 1/8 each, six of them with nothing reported
    assert sorted(lg.key for lg in p.laggard_cities) == ["360200", "360300"]
    assert [lg.share_of_shortfall for lg in p.laggard_cities] == [0.5, 0.5]
    assert p.cities_reporting is not None
    assert (p.cities_reporting.reported, p.cities_reporting.of) == (5, 11)


# -- the pure rules ---------------------------------------------------------------------------------------


def test_physical_ranges_by_indicator() -> None:
    assert physical_range("dc_pue") == (1.0, math.inf)
    assert physical_range("ipv6_share_fixed") == (0.0, 100.0)
    assert physical_range("bs5g_efficiency") == (0.0, math.inf)
    assert physical_range("gigabit_city") == (0.0, 1.0)
    assert clamp_to_range(104.0, 0.0, 100.0) == 100.0 and clamp_to_range(None, 0, 1) is None


def test_which_targets_may_be_achieved_early() -> None:
    assert achievable_early("bs5g_new") and achievable_early("gigabit_cities") and achievable_early("bs5g_total")
    assert not achievable_early("ipv6_share_mobile") and not achievable_early("dc_pue")
    assert not achievable_early("bs5g_efficiency") and not achievable_early("iot_per_capita")


@pytest.mark.parametrize(
    ("actual", "projected", "passed", "early", "has_baseline", "status"),
    [
        (None, None, True, True, True, "no_data"),
        (60.0, 60.0, False, False, True, "on_track"),  # a share met early
        (60.0, 60.0, False, True, True, "achieved"),  # a count met early
        (60.0, 40.0, False, False, True, "off_track"),  # met now, trending far below
        (60.0, None, True, False, True, "achieved"),
        (40.0, None, True, False, True, "missed"),
        (0.0, 0.0, True, True, False, "no_data"),  # no level to count an increase from
    ],
)
def test_decide_status(
    actual: float | None, projected: float | None, passed: bool, early: bool, has_baseline: bool, status: str
) -> None:
    got = decide_status(
        actual=actual,
        expected=50.0,
        projected=projected,
        goal=55.0,
        baseline=45.0,
        comparator=">=",
        tolerance=0.05,
        deadline_passed=passed,
        early_achievement=early,
        has_baseline=has_baseline,
    )
    assert got == status


def test_staleness_is_twice_the_cadence_per_input_metric() -> None:
    day = 86400.0
    assert not is_stale({"traffic_mobile_gb": 10 * day, "bs5g_energy_kwh": 10 * day}, 11.5 * day)
    assert is_stale({"traffic_mobile_gb": 10 * day, "bs5g_energy_kwh": 8 * day}, 11.5 * day)
    assert not is_stale({"traffic_mobile_gb": None}, 11.5 * day)  # never reported: no_data, not stale


# -- a daily delta stamped at midnight is the day before's ------------------------------------------------


def test_a_daily_delta_stamped_at_midnight_lands_in_the_day_it_covers(conn: psycopg.Connection) -> None:
    from metrics import indicator_series, refresh_rollups
    from metrics.timeutil import PLAN_TZ

    # traffic of 1, 2 and 3 June reported at 00:00 of the next day; the last one closes June
    push(conn, "traffic_mobile_gb", [(f"2023-06-0{d + 1}T00:00:00+08:00", 360100, 100 * d) for d in (1, 2, 3)])
    push(conn, "traffic_mobile_gb", [("2023-07-01T00:00:00+08:00", 360100, 30)])
    start, end = datetime(2023, 6, 1, tzinfo=PLAN_TZ), datetime(2023, 6, 5, tzinfo=PLAN_TZ)
    for rolled_up in (False, True):  # computed from the observations, then read from the rollups
        days = indicator_series(conn, "traffic_mobile_gb", region=360100, start=start, end=end, interval="1d")
        assert [(p.ts.day, p.value) for p in days] == [(1, 100), (2, 200), (3, 300), (4, None)], rolled_up
        june = indicator_series(
            conn,
            "traffic_mobile_gb",
            region=360100,
            start=start,
            end=datetime(2023, 7, 1, tzinfo=PLAN_TZ),
            interval="1mo",
        )
        assert [p.value for p in june] == [630], rolled_up
        refresh_rollups(conn)
        conn.commit()
