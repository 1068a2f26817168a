"""Grafana's query expansion, reproduced for checking the boards: variables as the SQL datasource quotes
them, then the PostgreSQL macro engine's $__time… macros."""

from datetime import UTC, datetime

import pytest

from dashboards.check import column_problem
from dashboards.grafana_sql import MacroError, TimeRange, Variable, auto_interval, expand, variables_used

FROM = datetime(2023, 1, 1, tzinfo=UTC)
TO = datetime(2023, 1, 2, 6, 30, tzinfo=UTC)


def _range(**variables: Variable) -> TimeRange:
    return TimeRange(FROM, TO, variables=variables)


def test_time_filter_and_bounds_expand_to_rfc3339_utc_literals() -> None:
    sql = expand("WHERE $__timeFilter(r.bucket) AND x > $__timeFrom() AND x < $__timeTo()", _range())
    assert sql == (
        "WHERE r.bucket BETWEEN '2023-01-01T00:00:00Z' AND '2023-01-02T06:30:00Z'"
        " AND x > '2023-01-01T00:00:00Z' AND x < '2023-01-02T06:30:00Z'"
    )


def test_time_group_alias_buckets_epoch_seconds_or_uses_time_bucket_on_timescaledb() -> None:
    # 1d = 86400 s, as Grafana's macros.go prints it
    assert expand("SELECT $__timeGroupAlias(ts, '1d')", _range()) == (
        'SELECT floor(extract(epoch from ts)/86400)*86400 AS "time"'
    )
    assert expand("SELECT $__timeGroupAlias(ts, 5m)", _range(), timescaledb=True) == (
        "SELECT time_bucket('300.000s',ts) AS \"time\""
    )


def test_interval_is_the_range_over_data_points_rounded_like_grafana() -> None:
    # 30.5 h over 1000 points = 109.8 s → Grafana rounds to 2m
    assert auto_interval(FROM, TO) == "2m"
    assert expand("$__timeGroup(ts, $__interval)", _range()) == "floor(extract(epoch from ts)/120)*120"


def test_single_value_variables_are_raw_and_multi_or_all_are_quoted_lists() -> None:
    variables = {
        "indicator": Variable("indicator", "bs5g_total"),
        "operator": Variable("operator", ["cmcc", "o'brien"], multi=True, include_all=True),
        "one": Variable("one", "ctcc", multi=True),
    }
    sql = expand("'$indicator' ${indicator} IN ($operator) = [[one]]", TimeRange(FROM, TO, variables=variables))
    assert sql == "'bs5g_total' bs5g_total IN ('cmcc','o''brien') = 'ctcc'"


def test_unknown_macros_are_refused_like_grafana_does() -> None:
    with pytest.raises(MacroError, match="unknown macro"):
        expand("SELECT $__timeGroupAlia(ts, 1d)", _range())


def test_variables_used_ignores_macros_and_builtins() -> None:
    assert variables_used("WHERE $__timeFilter(ts) AND a = '$target' AND b IN ($operator) $__interval") == {
        "target",
        "operator",
    }


def test_a_time_series_needs_time_first_and_a_numeric_value() -> None:
    assert column_problem("timeseries", "time_series", [("time", "timestamptz"), ("value", "float8")]) is None
    assert column_problem("timeseries", "time_series", [("value", "float8"), ("time", "timestamptz")])
    assert column_problem("timeseries", "time_series", [("time", "timestamptz"), ("metric", "text")])
    assert column_problem("bargauge", "table", [("city", "text"), ("value", "float8")]) is None
    assert column_problem("bargauge", "table", [("value", "float8")])
    assert column_problem("stat", "table", [("name", "text")])
