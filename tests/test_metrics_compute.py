"""The indicator and progress arithmetic, without a database: small hand-checkable numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import compute, verdict
from metrics.compute import Series
from metrics.rollups import day_ranges

DAY = 86400.0


def s(*points: tuple[float, float]) -> Series:
    return Series.of(points)


def test_gauge_sum_takes_each_series_latest_value_before_the_instant() -> None:
    a = s((0, 10), (10, 12))
    b = s((5, 100))
    c = compute.combine_gauges([a, b], np.array([11.0]), staleness_s=1000)
    assert c.value[0] == 112  # 12 + 100
    assert c.counted[0] == 2


def test_gauge_reading_at_the_instant_itself_is_not_yet_counted_for_a_bucket_ending_there() -> None:
    a = s((0, 10), (10, 12))
    assert compute.combine_gauges([a], np.array([10.0]), 1000).value[0] == 10


def test_stale_gauge_series_stops_counting_and_is_reported() -> None:
    fresh = s((90, 5))
    silent = s((0, 7))
    c = compute.combine_gauges([fresh, silent], np.array([100.0]), staleness_s=50)
    assert c.value[0] == 5  # the silent series (age 100 > 50) is left out
    assert c.stale[0] == 1


def test_gauge_without_any_reading_is_no_data() -> None:
    c = compute.combine_gauges([s((50, 1))], np.array([10.0]), 1000)
    assert math.isnan(c.value[0])


def test_counter_increments_handle_a_reset_like_prometheus_increase() -> None:
    # 0 → 150 → 300 → reset → 50 → 200: increments 0, 150, 150, 50 (the new reading itself), 150
    inc = compute.counter_increments(np.array([0, 150, 300, 50, 200], dtype=float))
    assert list(inc) == [0, 150, 150, 50, 150]


def test_a_delta_belongs_to_the_bucket_its_stamp_closes() -> None:
    # a delta is the volume of the interval ending at its ts: the one stamped 10 closes (0, 10]
    d = s((0, 1), (5, 2), (10, 4))
    v, n = compute.volumes(d, "delta", np.array([0.0, 10.0]), np.array([10.0, 20.0]))
    assert list(v) == [6, 0] and list(n) == [2, 0]


def test_a_daily_delta_stamped_at_midnight_lands_in_the_day_before() -> None:
    day = 86400.0
    # traffic of day 1 reported at the start of day 2, of day 2 at the start of day 3
    d = s((2 * day, 100), (3 * day, 200))
    v, _ = compute.volumes(d, "delta", np.array([day, 2 * day, 3 * day]), np.array([2 * day, 3 * day, 4 * day]))
    assert list(v) == [100, 200, 0]


def test_counter_increments_are_booked_at_the_reading_that_ends_them_within_half_open_buckets() -> None:
    c = s((0, 0), (5, 2), (10, 6))
    v, n = compute.volumes(c, "counter", np.array([0.0, 10.0]), np.array([10.0, 20.0]))
    assert list(v) == [2, 4] and list(n) == [2, 1]


def test_ratio_of_sums_is_not_the_mean_of_ratios() -> None:
    # cmcc: 450 of 900 GB IPv6 (50 %); ctcc: 10 of 100 GB (10 %). Σ = 460/1000 = 46 %, mean of % = 30 %
    pairs = [(s((1, 450)), s((1, 900))), (s((1, 10)), s((1, 100)))]
    c, num, den = compute.paired_ratio(pairs, "delta", "delta", np.array([0.0]), np.array([2.0]), scale=100)
    assert c.value[0] == pytest.approx(46.0)
    assert (num[0], den[0]) == (460, 1000)


def test_unit_that_sent_only_its_numerator_does_not_inflate_a_ratio() -> None:
    pairs = [(s((1, 50)), s((1, 100))), (s((1, 999)), None)]
    c, _, _ = compute.paired_ratio(pairs, "delta", "delta", np.array([0.0]), np.array([2.0]), scale=100)
    assert c.value[0] == pytest.approx(50.0)


def test_counter_reset_gives_a_plausible_pue() -> None:
    # facility 0,150,300,[reset]50,200 → 500 kWh; IT 0,100,200,300,400 → 400 kWh; PUE 1.25
    fac = s((0, 0), (1, 150), (2, 300), (3, 50), (4, 200))
    it = s((0, 0), (1, 100), (2, 200), (3, 300), (4, 400))
    c, _, _ = compute.paired_ratio([(fac, it)], "counter", "counter", np.array([0.0]), np.array([5.0]))
    assert c.value[0] == pytest.approx(1.25)


def test_increase_counts_from_the_level_at_start() -> None:
    g = s((-10, 100), (5, 130), (8, 160))
    c = compute.combine_increases([g], start=0.0, at=np.array([6.0, 9.0]), staleness_s=1000)
    assert list(c.value) == [30, 60]


def test_increase_of_a_series_that_began_after_start_counts_from_its_first_reading() -> None:
    g = s((5, 130), (8, 160))
    c = compute.combine_increases([g], start=0.0, at=np.array([9.0]), staleness_s=1000)
    assert c.value[0] == 30


def test_count_flagged_counts_cities_whose_latest_flag_is_one() -> None:
    cities = [s((0, 1)), s((0, 0), (5, 1)), s((0, 1), (5, 0))]
    assert compute.count_flagged(cities, np.array([3.0, 6.0]), 1000).value.tolist() == [2, 2]


def test_province_reference_series_wins_over_the_sum_of_cities() -> None:
    prov = compute.combine_gauges([s((0, 1000))], np.array([1.0, 1.0]), 10)
    prov.value[1] = np.nan
    cities = compute.combine_gauges([s((0, 400)), s((0, 500))], np.array([1.0, 1.0]), 10)
    assert compute.prefer_reference(prov, cities).value.tolist() == [1000, 900]


def test_theil_sen_ignores_an_outlier() -> None:
    xs = [0, 1, 2, 3, 4]
    ys = [0, 1, 2, 30, 4]  # slope 1 with one typo
    slope, intercept = compute.theil_sen(xs, ys) or (0, 0)
    assert slope == pytest.approx(1.0) and intercept == pytest.approx(0.0)
    assert compute.project(xs, ys, 10) == pytest.approx(10.0)


def test_projection_needs_three_points() -> None:
    assert compute.project([0, 1], [0, 1], 5) is None


def test_expected_is_linear_between_baseline_and_goal() -> None:
    f = compute.elapsed_fraction(0, 100, 25)
    assert compute.expected_value(1000, 1200, f) == 1050


def test_monthly_profile_replaces_the_straight_line() -> None:
    # three months ending at 10, 20, 30; cumulative 0.1, 0.2, 1.0 → at 25: 0.2 + 0.8 × 0.5 = 0.6
    assert compute.profile_fraction([0.1, 0.2, 1.0], 0, 30, 25, [10, 20, 30]) == pytest.approx(0.6)
    assert compute.profile_fraction([0.1, 0.2, 1.0], 0, 30, 5, [10, 20, 30]) == pytest.approx(0.05)


def _status(**kw: object) -> str:
    args: dict = dict(
        actual=1100.0,
        expected=1100.0,
        projected=1250.0,
        goal=1200.0,
        baseline=1000.0,
        comparator=">=",
        tolerance=0.05,
        deadline_passed=False,
        early_achievement=True,  # a count target: met early is achieved
    )
    args.update(kw)
    return verdict.decide_status(**args)


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({}, "on_track"),
        ({"actual": 1091.0}, "on_track"),  # 9 behind; tolerance 5 % of 200 = 10
        ({"actual": 1089.0}, "at_risk"),  # 11 behind, trend fine
        ({"projected": 1195.0}, "at_risk"),  # misses by 5 < 10
        ({"projected": 1150.0}, "off_track"),  # misses by 50
        ({"actual": 1200.0}, "achieved"),
        ({"deadline_passed": True}, "missed"),
        ({"actual": None}, "no_data"),
        ({"projected": None, "actual": 1080.0}, "at_risk"),
        ({"projected": None}, "on_track"),
        # a <= target (PUE from 1.8 to 1.5; tolerance 0.015)
        (
            {"comparator": "<=", "goal": 1.5, "baseline": 1.8, "expected": 1.65, "actual": 1.66, "projected": 1.45},
            "on_track",
        ),
        (
            {"comparator": "<=", "goal": 1.5, "baseline": 1.8, "expected": 1.65, "actual": 1.7, "projected": 1.45},
            "at_risk",
        ),
        (
            {"comparator": "<=", "goal": 1.5, "baseline": 1.8, "expected": 1.65, "actual": 1.66, "projected": 1.51},
            "at_risk",
        ),
        (
            {"comparator": "<=", "goal": 1.5, "baseline": 1.8, "expected": 1.65, "actual": 1.8, "projected": 1.8},
            "off_track",
        ),
        ({"comparator": "<=", "goal": 1.5, "baseline": 1.8, "expected": 1.65, "actual": 1.5}, "achieved"),
        (
            {"comparator": "<", "goal": 1.5, "baseline": 1.8, "expected": 1.5, "actual": 1.5, "deadline_passed": True},
            "missed",
        ),
    ],
)
def test_status_rules_of_interface_section_8(kw: dict, status: str) -> None:
    assert _status(**kw) == status


def test_ratio_shortfall_attributes_missing_ipv6_traffic() -> None:
    # goal 40 %: city A 100/1000 GB lacks 300 GB, city B 500/1000 lacks none
    short = compute.ratio_shortfalls({"A": 100, "B": 500}, {"A": 1000, "B": 1000}, 40, 100, ">=")
    assert compute.shortfall_shares(short) == {"A": 1.0}


def test_additive_shortfall_uses_fair_shares_of_the_required_change() -> None:
    # 300 required; A had 2/3 of the baseline (due 200, made 50 → 150 short), B 1/3 (due 100, made 100)
    short = compute.additive_shortfalls({"A": 50, "B": 100}, {"A": 200, "B": 100}, 300, ">=")
    assert short == {"A": 150, "B": 0}


def test_dirty_days_merge_into_ranges_capped_at_today() -> None:
    from datetime import date

    days = [date(2023, 1, 1), date(2023, 1, 2), date(2023, 3, 1)]
    assert day_ranges(days, 2, date(2023, 3, 2)) == [
        (date(2023, 1, 1), date(2023, 1, 4)),
        (date(2023, 3, 1), date(2023, 3, 2)),
    ]


# -- many series at once -----------------------------------------------------------------------------------

_times = st.lists(st.sampled_from([float(t) for t in range(-10, 110, 5)] + [37.5, 42.25]), unique=True, max_size=9)


@st.composite
def _series_sets(draw: st.DrawFn) -> tuple[list[Series], np.ndarray, np.ndarray, str]:
    series = []
    for ts in draw(st.lists(_times, max_size=5)):
        values = draw(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=len(ts), max_size=len(ts)))
        series.append(Series.of(zip(ts, values, strict=True)))
    edges = sorted(draw(st.sets(st.sampled_from([float(t) for t in range(-20, 130, 10)]), min_size=2, max_size=6)))
    kind = draw(st.sampled_from(["counter", "delta", "ytd"]))
    return series, np.array(edges[:-1]), np.array(edges[1:]), kind


@settings(max_examples=300, deadline=None)
@given(_series_sets())
def test_volumes_of_many_series_equal_each_series_summed_on_its_own(case: tuple) -> None:
    series, lo, hi, kind = case
    sums, counts = compute.volumes_of_many(series, kind, lo, hi)
    assert sums.shape == counts.shape == (len(series), len(lo))
    for i, s in enumerate(series):
        # one series at a time, from the per-reading rules and a running sum
        if kind == "counter":
            amounts = compute.counter_increments(s.value)
        elif kind == "ytd":
            amounts = compute.ytd_increments(s.ts, s.value)
        else:
            amounts = s.value
        one, n = compute.window_sums(s.ts, amounts, lo, hi, ending=kind == "delta")
        np.testing.assert_allclose(sums[i], one, rtol=1e-9, atol=1e-6)
        assert counts[i].tolist() == n.tolist()


def test_volumes_of_many_keep_a_small_bucket_beside_large_ones_exact() -> None:
    # a running sum over every series would round 0.1 away beside 1e17
    big = Series(np.array([0.0, 10.0]), np.array([0.0, 1e17]))
    small = Series(np.array([0.0, 10.0]), np.array([0.0, 0.1]))
    sums, _ = compute.volumes_of_many([big, small], "counter", np.array([0.0]), np.array([20.0]))
    assert sums[:, 0].tolist() == [1e17, 0.1]
