"""Progress of plan targets on small hand-computed scenarios, with observations written through the real
ingest pipeline into a real PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
import pytest

from ingest.pipeline import IngestPipeline
from metrics import (
    Target,
    evaluate_target,
    evaluate_targets,
    get_target,
    indicator_value,
    load_targets,
    parse_as_of,
    store_progress,
    upsert_target,
)
from metrics.timeutil import PLAN_TZ

PIPE = IngestPipeline()
MID_2023 = parse_as_of("2023-06-30")  # elapsed fraction of 2023: 181/365 = 0.4959


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
    """Stamp of a monthly figure: 00:00 of the month's last day (what a CSV `YYYY-MM` becomes)."""
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return f"{nxt - timedelta(days=1)}T00:00:00+08:00"


def monthly(region: int, values: dict[tuple[int, int], float]) -> list[tuple[str, int, float]]:
    return [(month_end(y, m), region, v) for (y, m), v in values.items()]


# A city-level 5G target: from 1000 base stations (Dec 2022) to >= 1200 by the end of 2023.
# At 2023-06-30: expected = 1000 + 200 × 0.4959 = 1099.2; tolerance = 5 % of 200 = 10.
CITY_TARGET = Target(
    id="t-city-5g",
    title="Nanchang 5G",
    indicator="bs5g_total",
    region=360100,
    comparator=">=",
    goal=1200,
    start=date(2023, 1, 1),
    deadline=date(2023, 12, 31),
)


def _series(jan_to_jun: list[float]) -> dict[tuple[int, int], float]:
    out = {(2022, 12): 1000.0}
    out.update({(2023, m + 1): v for m, v in enumerate(jan_to_jun)})
    return out


def test_target_on_pace_is_on_track(conn: psycopg.Connection) -> None:
    # +20 a month: 1120 at June ≥ expected 1099; trend 20/month → ~1240 by December ≥ 1200
    push(conn, "bs5g_total", monthly(360100, _series([1020, 1040, 1060, 1080, 1100, 1120])))
    p = evaluate_target(conn, CITY_TARGET, MID_2023)
    assert p.status == "on_track"
    assert p.baseline == 1000 and p.actual == 1120
    assert p.expected == pytest.approx(1000 + 200 * 181 / 365, rel=1e-3)
    assert p.projected == pytest.approx(1240, abs=3)
    assert p.gap == 80


def test_behind_pace_with_a_good_trend_is_at_risk(conn: psycopg.Connection) -> None:
    # flat until April, then +40 a month: 1080 at June lags expected 1099 by 19 > 10; trend → ~1320
    push(conn, "bs5g_total", monthly(360100, _series([1000, 1000, 1000, 1000, 1040, 1080])))
    p = evaluate_target(conn, CITY_TARGET, MID_2023)
    assert p.status == "at_risk"
    assert p.projected is not None and p.projected > 1200


def test_stalled_series_is_off_track(conn: psycopg.Connection) -> None:
    # one step in January, then nothing: projected stays at 1050, 150 short of 1200
    push(conn, "bs5g_total", monthly(360100, _series([1050] * 6)))
    p = evaluate_target(conn, CITY_TARGET, MID_2023)
    assert p.status == "off_track"
    assert p.projected == pytest.approx(1050)


def test_goal_met_early_is_achieved(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", monthly(360100, _series([1100, 1150, 1210, 1220, 1230, 1250])))
    assert evaluate_target(conn, CITY_TARGET, MID_2023).status == "achieved"


def test_deadline_passed_unmet_is_missed_and_judged_at_the_deadline(conn: psycopg.Connection) -> None:
    values = {(2022, 12): 1000.0, **{(2023, m): 1000.0 + 10 * m for m in range(1, 13)}}  # 1120 in December
    push(conn, "bs5g_total", monthly(360100, values))
    push(conn, "bs5g_total", [("2024-01-05T00:00:00+08:00", 360100, 1300)])  # too late to count
    p = evaluate_target(conn, CITY_TARGET, parse_as_of("2024-01-10"))
    assert p.status == "missed"
    assert p.actual == 1120


def test_nothing_in_scope_is_no_data(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", monthly(360100, _series([1020] * 6)))
    other_city = CITY_TARGET.model_copy(update={"region": 360200})
    p = evaluate_target(conn, other_city, MID_2023)
    assert p.status == "no_data" and p.actual is None


def test_as_of_uses_only_observations_stamped_up_to_that_instant(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", monthly(360100, _series([1020, 1040, 1060, 1080, 1100, 1250])))
    assert evaluate_target(conn, CITY_TARGET, parse_as_of("2023-05-31")).actual == 1100
    assert evaluate_target(conn, CITY_TARGET, MID_2023).status == "achieved"


def test_revised_observation_changes_the_result(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", monthly(360100, _series([1100, 1150, 1210, 1220, 1230, 1250])))
    assert evaluate_target(conn, CITY_TARGET, MID_2023).status == "achieved"
    push(conn, "bs5g_total", [(month_end(2023, 6), 360100, 1125)])  # the operator corrects June
    p = evaluate_target(conn, CITY_TARGET, MID_2023)
    assert p.actual == 1125 and p.status != "achieved"


# -- a `<=` target: data-centre PUE in Ganzhou, from 1.8 (December 2022) to <= 1.5 by the end of 2023 ----
# Daily meter readings at 00:00; IT energy 100 kWh a day, facility 100 × PUE(day).
# At 2023-06-30: expected = 1.8 − 0.3 × 0.4959 = 1.651; tolerance = 5 % of 0.3 = 0.015.

PUE_TARGET = Target(
    id="t-pue",
    title="Ganzhou PUE",
    indicator="dc_pue",
    region=360700,
    comparator="<=",
    goal=1.5,
    start=date(2023, 1, 1),
    deadline=date(2023, 12, 31),
)


def push_meters(conn: psycopg.Connection, pue_of_day: object, until: date = date(2023, 6, 30)) -> None:
    day = date(2022, 11, 30)
    fac, it = 0.0, 0.0
    fac_pts, it_pts = [], []
    d0 = date(2023, 1, 1)
    while day <= until:
        ts = f"{day}T00:00:00+08:00"
        fac_pts.append((ts, 360700, round(fac, 3)))
        it_pts.append((ts, 360700, round(it, 3)))
        k = (day - d0).days
        fac += 100 * pue_of_day(k)  # type: ignore[operator]
        it += 100
        day += timedelta(days=1)
    push(conn, "dc_energy_total_kwh", fac_pts, operator="cmcc", entity="gz-dc1")
    push(conn, "dc_energy_it_kwh", it_pts, operator="cmcc", entity="gz-dc1")


@pytest.mark.parametrize(
    ("pue_of_day", "as_of", "status"),
    [
        # declines 0.001 a day from 1.8: ~1.64 over June (ahead of 1.651), trend reaches 1.435 by December
        (lambda k: 1.8 if k < 0 else 1.8 - 0.001 * k, "2023-06-30", "on_track"),
        # declines 0.29 over the year: trend ends at ~1.51, missing 1.5 by less than 0.015
        (lambda k: 1.8 if k < 0 else 1.8 - 0.29 * k / 365, "2023-06-30", "at_risk"),
        # stuck at 1.8
        (lambda k: 1.8, "2023-06-30", "off_track"),
        # 1.45 since January: met now, but a ratio is only achieved at its deadline
        (lambda k: 1.8 if k < 0 else 1.45, "2023-06-30", "on_track"),
        # 1.45 through the year, judged after the deadline
        (lambda k: 1.8 if k < 0 else 1.45, "2024-01-10", "achieved"),
        # 1.6 through the year, judged after the deadline
        (lambda k: 1.8 if k < 0 else 1.6, "2024-01-10", "missed"),
    ],
)
def test_pue_target_in_each_state(conn: psycopg.Connection, pue_of_day: object, as_of: str, status: str) -> None:
    push_meters(conn, pue_of_day, until=date(2024, 1, 9) if as_of.startswith("2024") else date(2023, 6, 30))
    p = evaluate_target(conn, PUE_TARGET, parse_as_of(as_of))
    assert p.baseline == pytest.approx(1.8)
    assert p.status == status, p


def test_pue_target_without_meters_is_no_data(conn: psycopg.Connection) -> None:
    assert evaluate_target(conn, PUE_TARGET, MID_2023).status == "no_data"


def test_counter_reset_does_not_give_a_negative_or_inflated_pue(conn: psycopg.Connection) -> None:
    # facility 0, 150, 300, then the meter is replaced: 50, 200 → 150+150+50+150 = 500; IT 400 → PUE 1.25
    days = [f"2023-06-{d:02d}T00:00:00+08:00" for d in (1, 2, 3, 4, 5)]
    push(
        conn,
        "dc_energy_total_kwh",
        [(t, 360700, v) for t, v in zip(days, [0, 150, 300, 50, 200], strict=True)],
        entity="dc1",
    )
    push(
        conn,
        "dc_energy_it_kwh",
        [(t, 360700, v) for t, v in zip(days, [0, 100, 200, 300, 400], strict=True)],
        entity="dc1",
    )
    v = indicator_value(conn, "dc_pue", region=360700, as_of=MID_2023)
    assert v.value == pytest.approx(1.25)


# -- province targets: 物超人, IPv6 shares, gigabit cities ---------------------------------------------------


def test_iot_over_population_compares_with_the_population_series(conn: psycopg.Connection) -> None:
    load_targets(conn)
    target = get_target(conn, "jx-2023-iot-over-pop")
    assert target is not None
    push(conn, "population", [("2022-12-31T00:00:00+08:00", 360000, 1000)], operator="admin")
    # pan-IoT: 800 in December 2022, 1040 in June 2023 (two cities)
    for city in (360100, 360200):
        push(conn, "iot_connections_pan", monthly(city, {(2022, 12): 400, (2023, 6): 520}))
    p = evaluate_target(conn, target, MID_2023)
    assert p.goal == 1000 and p.actual == 1040
    assert p.status == "achieved"
    # the administration updates the population: 1100 from June → 1040 no longer exceeds it
    push(conn, "population", [("2023-06-01T00:00:00+08:00", 360000, 1100)], operator="admin")
    p = evaluate_target(conn, target, MID_2023)
    assert p.goal == 1100 and p.status != "achieved"


def test_ipv6_share_is_a_ratio_of_sums_not_a_mean_of_percentages(conn: psycopg.Connection) -> None:
    load_targets(conn)
    # June 2023 in Nanchang: cmcc 450 of 900 GB over IPv6 (50 %), ctcc 10 of 100 GB (10 %).
    # Σ IPv6 / Σ traffic = 460 / 1000 = 46 % ≥ 40 %; the mean of percentages would be 30 %.
    ts = month_end(2023, 6)
    push(conn, "traffic_mobile_gb", [(ts, 360100, 900)], operator="cmcc")
    push(conn, "ipv6_traffic_mobile_gb", [(ts, 360100, 450)], operator="cmcc")
    push(conn, "traffic_mobile_gb", [(ts, 360100, 100)], operator="ctcc")
    push(conn, "ipv6_traffic_mobile_gb", [(ts, 360100, 10)], operator="ctcc")
    v = indicator_value(conn, "ipv6_share_mobile", as_of=MID_2023)
    assert v.value == pytest.approx(46.0)
    target = get_target(conn, "jx-2022-ipv6-mobile")
    assert target is not None
    t2023 = target.model_copy(update={"start": date(2023, 1, 1), "deadline": date(2023, 12, 31)})
    p = evaluate_target(conn, t2023, MID_2023)
    assert p.actual == pytest.approx(46.0)
    assert p.status == "on_track" and p.met_now  # a share met in June can still fall back by December


def test_laggards_name_the_city_and_operator_behind(conn: psycopg.Connection) -> None:
    load_targets(conn)
    ts = month_end(2023, 6)
    # goal 55 %: Nanchang cmcc 60 of 100 GB is fine; Ganzhou ctcc 20 of 100 GB lacks 35 GB
    push(conn, "traffic_mobile_gb", [(ts, 360100, 100)], operator="cmcc")
    push(conn, "ipv6_traffic_mobile_gb", [(ts, 360100, 60)], operator="cmcc")
    push(conn, "traffic_mobile_gb", [(ts, 360700, 100)], operator="ctcc")
    push(conn, "ipv6_traffic_mobile_gb", [(ts, 360700, 20)], operator="ctcc")
    [p] = evaluate_targets(conn, MID_2023, ["jx-2023-ipv6-mobile"])
    assert p.actual == pytest.approx(40.0)
    assert [lg.key for lg in p.laggard_cities] == ["360700"]
    assert p.laggard_cities[0].share_of_shortfall == pytest.approx(1.0)
    assert [lg.key for lg in p.laggard_operators] == ["ctcc"]


def test_gigabit_cities_count_cities_whose_latest_flag_is_one(conn: psycopg.Connection) -> None:
    push(
        conn, "gigabit_city", [("2022-06-30T00:00:00+08:00", c, 1) for c in (360100, 360400, 361100)], operator="admin"
    )
    push(conn, "gigabit_city", [("2023-03-31T00:00:00+08:00", 360700, 1)], operator="admin")
    assert indicator_value(conn, "gigabit_cities", as_of=datetime(2023, 1, 1, tzinfo=PLAN_TZ)).value == 3
    assert indicator_value(conn, "gigabit_cities", as_of=MID_2023).value == 4


def test_increase_target_counts_from_the_value_at_start(conn: psycopg.Connection) -> None:
    load_targets(conn)
    # 5000 in each of two cities at the end of 2022; 9000 + 6000 by June 2023 → 5000 new (goal 18000)
    push(conn, "bs5g_total", monthly(360100, {(2022, 12): 5000, (2023, 6): 9000}))
    push(conn, "bs5g_total", monthly(360200, {(2022, 12): 5000, (2023, 6): 6000}))
    [p] = evaluate_targets(conn, MID_2023, ["jx-2023-5g-new"])
    assert p.actual == 5000 and p.baseline == 0
    # Jingdezhen added 1000 where its fair half of the 8926 due by now was 4463: it lags most
    assert p.laggard_cities[0].key == "360200"


def test_stored_progress_feeds_the_expected_trajectory_function(conn: psycopg.Connection) -> None:
    load_targets(conn)
    push(conn, "bs5g_total", monthly(360100, {(2022, 12): 5000, (2023, 6): 9000}))
    progresses = evaluate_targets(conn, MID_2023)
    store_progress(conn, progresses)
    row = conn.execute(
        "SELECT status, actual, goal, laggards->'cities' IS NOT NULL FROM target_progress WHERE target_id = %s",
        ("jx-2023-5g-new",),
    ).fetchone()
    assert row is not None and row[1:] == (4000.0, 18000.0, True)
    from metrics.targets import read_targets_file

    assert conn.execute("SELECT count(*) FROM target_progress").fetchone() == (len(read_targets_file()),)
    # linear from 0 to 18000 over 2023: 9000 at 2 July 12:00 (half of 365 days), 18000 after the deadline
    half = conn.execute("SELECT iw_target_expected('jx-2023-5g-new', '2023-07-02T12:00:00+08:00')").fetchone()
    assert half is not None and half[0] == pytest.approx(9000)
    assert conn.execute("SELECT iw_target_expected('jx-2023-5g-new', '2024-03-01')").fetchone() == (18000.0,)
    # a monthly profile: 10 % due by the end of January
    t = get_target(conn, "jx-2023-5g-new")
    assert t is not None
    upsert_target(
        conn, t.model_copy(update={"profile": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0]})
    )
    jan = conn.execute("SELECT iw_target_expected('jx-2023-5g-new', '2023-02-01T00:00:00+08:00')").fetchone()
    assert jan is not None and jan[0] == pytest.approx(1800)
    assert evaluate_target(
        conn, get_target(conn, "jx-2023-5g-new"), parse_as_of("2023-01-31")
    ).expected == pytest.approx(1800)  # type: ignore[arg-type]
