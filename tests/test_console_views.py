"""The console's pure presentation helpers: figures, ages, statuses, the expected trajectory and the
chart geometry (hand-computed coordinates), and the feed-freshness grid. No I/O."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from api.console.charts import compact_number, expected_trajectory, trajectory_chart
from api.console.views import format_age, format_value, freshness_grid, status_tone, status_word
from metrics import FeedFreshness
from metrics.timeutil import end_of_day, start_of_day


def test_figures_read_with_separators_and_their_unit() -> None:
    assert format_value(1360.0, "count") == "1,360"
    assert format_value(41.26, "%") == "41.3%"
    assert format_value(1.349, "ratio") == "1.35"
    assert format_value(12000.0, "GB") == "12,000 GB"
    assert format_value(3.5, "kWh") == "3.50 kWh"
    assert format_value(4_500_000.0, "persons") == "4,500,000 persons"
    assert format_value(None, "count") == "—"
    assert format_value(math.nan, "%") == "—"


def test_ages_use_the_largest_sensible_unit() -> None:
    assert format_age(40) == "40 s"
    assert format_age(12 * 60) == "12 min"
    assert format_age(5 * 3600) == "5 h"
    assert format_age(3 * 86400) == "3 d"


def test_statuses_have_a_word_and_a_tone() -> None:
    assert (status_word("off_track"), status_tone("off_track")) == ("off track", "bad")
    assert (status_word("at_risk"), status_tone("at_risk")) == ("at risk", "warn")
    assert (status_word("achieved"), status_tone("achieved")) == ("achieved", "good")
    assert (status_word("no_data"), status_tone("no_data")) == ("no data", "none")


def test_axis_labels_are_compact() -> None:
    assert compact_number(1_234_567) == "1.23M"
    assert compact_number(34_000) == "34k"
    assert compact_number(1200) == "1,200"
    assert compact_number(41.5) == "41.5"


def test_linear_expected_trajectory_runs_from_baseline_at_start_to_goal_at_deadline() -> None:
    path = expected_trajectory(start=date(2023, 1, 1), deadline=date(2023, 12, 31), baseline=1000, goal=1200)
    assert [t for t, _ in path] == [start_of_day(date(2023, 1, 1)), end_of_day(date(2023, 12, 31))]
    assert [v for _, v in path] == [1000, 1200]


def test_profile_trajectory_has_a_corner_at_each_month_end() -> None:
    # half the change due by the end of January, all of it by the end of February
    path = expected_trajectory(
        start=date(2023, 1, 1), deadline=date(2023, 2, 28), baseline=1000, goal=1200, profile=[0.5, 1.0]
    )
    assert [t for t, _ in path] == [
        start_of_day(date(2023, 1, 1)),
        start_of_day(date(2023, 2, 1)),
        end_of_day(date(2023, 2, 28)),
    ]
    assert [v for _, v in path] == pytest.approx([1000, 1100, 1200])


def test_no_expected_trajectory_without_a_baseline() -> None:
    assert expected_trajectory(start=date(2023, 1, 1), deadline=date(2023, 12, 31), baseline=None, goal=5) == []


def test_chart_coordinates_match_a_hand_computed_frame() -> None:
    # width 360, height 150: plot x from 44 to 352, y from 8 (top) to 130 (bottom).
    # Values 0 … 100, the top padded by 6 % → 106: y(v) = 130 − v / 106 × 122; y(100) = 14.9, y(50) = 72.5.
    t0 = datetime(2023, 1, 1, tzinfo=UTC)
    t1 = datetime(2024, 1, 1, tzinfo=UTC)
    half = t0 + (t1 - t0) / 2
    chart = trajectory_chart(
        start=t0,
        deadline=t1,
        as_of=half,
        actual=[(t0, 0.0), (half, 50.0)],
        expected=[(t0, 0.0), (t1, 100.0)],
        projected=100.0,
        goal=100.0,
    )
    assert chart.actual == "44.0,130.0 198.0,72.5"
    assert chart.expected == "44.0,130.0 352.0,14.9"
    assert chart.projection == "198.0,72.5 352.0,14.9"  # from the last actual point to the deadline
    assert chart.goal_y == 14.9
    assert chart.now_x == 198.0
    assert [label for _, label in chart.y_ticks] == ["0", "53", "106"]
    assert "actual 50" in chart.description and "goal 100" in chart.description


def test_chart_leaves_out_points_outside_the_target_period_and_projects_nothing_after_the_deadline() -> None:
    t0 = datetime(2023, 1, 1, tzinfo=UTC)
    t1 = datetime(2023, 12, 31, tzinfo=UTC)
    chart = trajectory_chart(
        start=t0,
        deadline=t1,
        as_of=t1 + timedelta(days=30),
        actual=[(t0 - timedelta(days=1), 5.0), (t1, 10.0)],
        expected=[],
        projected=12.0,
        goal=None,
    )
    assert chart.actual.count(",") == 1  # only the point at the deadline
    assert chart.projection == "" and chart.now_x is None


def test_chart_without_data_says_so() -> None:
    t0 = datetime(2023, 1, 1, tzinfo=UTC)
    chart = trajectory_chart(
        start=t0, deadline=t0 + timedelta(days=10), as_of=t0, actual=[], expected=[], projected=None, goal=None
    )
    assert chart.actual == "" and chart.description == "no data to draw yet"


def _feed(operator: str, metric: str, region: int, age_days: float, cadence_s: int = 86400) -> FeedFreshness:
    now = datetime(2024, 1, 10, tzinfo=UTC)
    age = age_days * 86400
    return FeedFreshness(
        operator=operator,
        metric=metric,
        region=region,
        last_ts=now - timedelta(seconds=age),
        last_received_at=now,
        age_s=age,
        cadence_s=cadence_s,
        stale=age > 2 * cadence_s,
    )


def test_feed_grid_is_stale_when_any_city_is_and_shows_the_oldest_age() -> None:
    grid = freshness_grid(
        [
            _feed("ctcc", "traffic_mobile_gb", 360100, 0.5),
            _feed("cmcc", "traffic_mobile_gb", 360100, 0.5),
            _feed("cmcc", "traffic_mobile_gb", 360200, 3.0),  # silent 3 days on a daily cadence: stale
        ]
    )
    assert grid.operators == ["cmcc", "ctcc"] and grid.metrics == ["traffic_mobile_gb"]
    cmcc = grid.cell("cmcc", "traffic_mobile_gb")
    assert cmcc is not None and cmcc.stale and (cmcc.regions, cmcc.stale_regions) == (2, 1)
    assert cmcc.oldest_age_s == 3 * 86400
    assert cmcc.newest_ts == datetime(2024, 1, 9, 12, tzinfo=UTC)
    ctcc = grid.cell("ctcc", "traffic_mobile_gb")
    assert ctcc is not None and not ctcc.stale
    assert grid.stale_count == 1
    assert grid.cell("ctcc", "bs5g_total") is None
