"""The generator against its scenario: growth toward the plan targets, splits, seasonality, determinism."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from reference.regions import CITIES
from simulators.generate import Window, generate, scenario_window
from simulators.scenario import ScenarioError, load_scenario
from simulators.timeline import DAY_US, format_ts, parse_cadence, parse_instant, ticks

SHANGHAI = load_scenario("jiangxi-2023").zone


@lru_cache(maxsize=1)
def jiangxi() -> pd.DataFrame:
    """jiangxi-2023 with daily meter readings (the meters are tested on their own below)."""
    return generate(load_scenario("jiangxi-2023", {"data_centres": {"cadence": "1h"}}))


def at(text: str) -> int:
    return parse_instant(text, SHANGHAI)


def province(frame: pd.DataFrame, metric: str, ts: str) -> float:
    sel = frame[(frame["metric"] == metric) & (frame["ts_us"] == at(ts)) & frame["region"].isin(CITIES)]
    assert len(sel), f"no {metric} at {ts}"
    return float(sel["value"].sum())


def share(frame: pd.DataFrame, family: str, ts: str) -> float:
    return 100 * province(frame, f"ipv6_traffic_{family}_gb", ts) / province(frame, f"traffic_{family}_gb", ts)


def test_monthly_statistics_are_dated_at_00_00_on_the_last_day_of_the_month() -> None:
    ts = ticks(parse_cadence("monthly"), at("2023-01-01"), at("2023-03-31"), SHANGHAI)
    assert list(format_ts(ts, SHANGHAI)) == [
        "2023-01-31T00:00:00+08:00",
        "2023-02-28T00:00:00+08:00",
        "2023-03-31T00:00:00+08:00",
    ]


def test_start_values_follow_the_baselines_split_over_cities_and_operators() -> None:
    f = jiangxi()
    # 72,000 5G base stations at the end of 2022, split over 4 operators × 11 cities (rounding ±22)
    assert province(f, "bs5g_total", "2022-12-31") == pytest.approx(72_000, abs=25)
    cells = f[(f["metric"] == "bs5g_total") & (f["ts_us"] == at("2022-12-31"))]
    assert len(cells) == 4 * 11
    # Ganzhou (897 of 4,519 ten-thousand residents) holds about a fifth
    ganzhou = cells[cells["region"] == 360700]["value"].sum()
    assert 0.15 < ganzhou / 72_000 < 0.25
    # the administration's population series at province level
    pop = f[(f["metric"] == "population") & (f["ts_us"] == at("2023-06-30"))]
    assert pop[["region", "operator", "value"]].values.tolist() == [[360000, "admin", 45_279_800.0]]


@pytest.mark.parametrize(
    ("target_id", "measure"),
    [
        ("jx-2023-5g-new", lambda f: province(f, "bs5g_total", "2023-12-31") - province(f, "bs5g_total", "2022-12-31")),
        ("jx-2023-gigabit-users", lambda f: province(f, "gigabit_users", "2023-12-31")),
        ("jx-2023-iot-mobile", lambda f: province(f, "iot_terminals_mobile", "2023-12-31")),
        ("jx-2023-iot-over-pop", lambda f: province(f, "iot_connections_pan", "2023-12-31")),
        ("jx-2023-ipv6-mobile", lambda f: share(f, "mobile", "2023-12-31")),
        ("jx-2023-ipv6-fixed", lambda f: share(f, "fixed", "2023-12-31")),
    ],
)
def test_growth_reaches_the_configured_fraction_of_each_target_by_the_deadline(target_id: str, measure) -> None:
    sc = load_scenario("jiangxi-2023")
    links = {g.target.id: g.target for g in sc.gauges.values() if g.target}
    links |= {t.ipv6_share.target.id: t.ipv6_share.target for t in sc.traffic if t.ipv6_share.target}
    link = links[target_id]
    reached = measure(jiangxi()) / link.goal
    # e.g. 5G: (91,440 − 72,000) / 18,000 = 1.08 as designed; noise keeps it within 1 %
    assert reached == pytest.approx(link.reach, rel=0.01)


def test_all_eleven_cities_are_gigabit_cities_by_the_deadline_and_five_at_the_start() -> None:
    f = jiangxi()
    assert province(f, "gigabit_city", "2022-12-31") == 5
    assert province(f, "gigabit_city", "2023-12-31") == 11


def test_pan_iot_connections_overtake_the_population_during_the_year() -> None:
    f = jiangxi()
    assert (
        province(f, "iot_connections_pan", "2022-12-31") < 45_279_800 < province(f, "iot_connections_pan", "2023-12-31")
    )


def _growth_vs_plan(f: pd.DataFrame, metric: str, key: str) -> pd.Series:
    start = f[(f["metric"] == metric) & (f["ts_us"] == at("2022-12-31"))].groupby(key)["value"].sum()
    end = f[(f["metric"] == metric) & (f["ts_us"] == at("2023-12-31"))].groupby(key)["value"].sum()
    # growth relative to start size: a cell on plan grows like the province
    return (end - start) / start / ((end.sum() - start.sum()) / start.sum())


def test_the_lagging_operator_and_city_grow_slowest() -> None:
    sc = load_scenario("jiangxi-2023")
    assert sc.expect is not None
    by_operator = _growth_vs_plan(jiangxi(), "bs5g_total", "operator")
    assert by_operator.idxmin() == sc.expect.lagging_operator == "cucc"
    assert by_operator["cucc"] < 0.7  # pace 0.55 against ~1.0 for the others
    by_city = _growth_vs_plan(jiangxi(), "bs5g_total", "region")
    assert by_city.idxmin() == sc.expect.lagging_city == 360800


def test_construction_is_heavier_late_in_the_year() -> None:
    f = jiangxi()
    q1 = province(f, "bs5g_total", "2023-03-31") - province(f, "bs5g_total", "2022-12-31")
    q4 = province(f, "bs5g_total", "2023-12-31") - province(f, "bs5g_total", "2023-09-30")
    assert q4 > 3 * q1  # weights 3+2+6 = 11 against 11+13+15 = 39


def test_traffic_has_a_weekly_cycle() -> None:
    f = jiangxi()
    t = f[f["metric"] == "traffic_mobile_gb"].groupby("ts_us")["value"].sum()
    # the report at 00:00 covers the day before: Sunday 00:00 covers Saturday
    weekday_of_covered_day = (
        pd.to_datetime(t.index - DAY_US // 2, unit="us", utc=True).tz_convert("Asia/Shanghai").day_of_week
    )
    weekend = t[weekday_of_covered_day >= 5].mean()
    weekdays = t[weekday_of_covered_day < 5].mean()
    assert 1.02 < weekend / weekdays < 1.09  # 5 % uplift by design


def _pue_by_month(f: pd.DataFrame, entity: str) -> pd.Series:
    dc = f[f["entity"] == entity].pivot(index="ts_us", columns="metric", values="value")
    month = pd.to_datetime(dc.index, unit="us", utc=True).tz_convert("Asia/Shanghai").month
    inc = dc.diff().dropna()
    inc_month = month[1:]
    return inc.groupby(inc_month)["dc_energy_total_kwh"].sum() / inc.groupby(inc_month)["dc_energy_it_kwh"].sum()


def test_the_hot_data_centre_runs_above_pue_1_5_all_year_and_the_others_below() -> None:
    f = jiangxi()
    hot = _pue_by_month(f, "dc-gz-cucc-01")
    assert (hot > 1.5).all()
    assert hot[7] > hot[1] + 0.05  # higher in summer
    for entity in ("dc-nc-cmcc-01", "dc-nc-ctcc-01", "dc-gz-ctcc-01", "dc-sr-cmcc-01"):
        assert (_pue_by_month(f, entity) < 1.5).all(), entity


def test_meter_readings_are_cumulative_and_only_grow() -> None:
    sc = load_scenario("jiangxi-2023")
    f = generate(sc, Window(at("2023-07-01"), at("2023-07-03")))
    meters = f[f["metric"].isin(["dc_energy_total_kwh", "dc_energy_it_kwh"])]
    # 5-minute cadence: 2 days × 288 + 1 readings per meter, 6 data centres × 2 meters
    assert len(meters) == (2 * 288 + 1) * 12
    for _, series in meters.groupby(["metric", "entity"]):
        assert (np.diff(series["value"].to_numpy()) > 0).all()


def test_a_window_generated_alone_equals_the_same_rows_of_a_longer_run() -> None:
    sc = load_scenario("jiangxi-2023")
    whole = generate(sc, Window(at("2023-03-01"), at("2023-03-10")))
    first = generate(sc, Window(at("2023-03-01"), at("2023-03-05") - 1))
    second = generate(sc, Window(at("2023-03-05"), at("2023-03-10")))
    pd.testing.assert_frame_equal(pd.concat([first, second], ignore_index=True), whole)


def test_the_same_seed_gives_the_same_values_and_another_seed_other_values() -> None:
    w = Window(at("2023-05-31"), at("2023-06-02"))
    a = generate(load_scenario("jiangxi-2023"), w)
    b = generate(load_scenario("jiangxi-2023"), w)
    c = generate(load_scenario("jiangxi-2023", {"seed": 99}), w)
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["value"].to_numpy(), c["value"].to_numpy())


def test_the_load_scenario_has_thousands_of_meters() -> None:
    sc = load_scenario("load")
    f = generate(sc, Window(at("2023-06-01"), at("2023-06-01") + 1))
    assert f["entity"].nunique() == 2000 + 3000
    assert len(f) == 2000 * 2 + 3000  # one reading each at 00:00


def test_a_scenario_with_an_unknown_operator_share_says_what_to_fix(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: jiangxi-2023\nname: bad\ngauges:\n  users_5g:\n    operators: {nobody: 1.0}\n")
    with pytest.raises(ScenarioError, match="operator 'nobody' is not listed under `operators`"):
        load_scenario(bad)


def test_the_scenario_window_runs_from_the_2022_baseline_to_the_2023_deadline() -> None:
    w = scenario_window(load_scenario("jiangxi-2023"))
    assert format_ts([w.start_us, w.end_us], SHANGHAI).tolist() == [
        "2022-12-31T00:00:00+08:00",
        "2023-12-31T00:00:00+08:00",
    ]
