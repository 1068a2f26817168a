"""Figures as official statistics publish them: totals at any level, `all` operators, year-to-date flows.

Observations go in through the ingest pipeline and come out through the metrics queries (real PostgreSQL)."""

from __future__ import annotations

import psycopg

from ingest.pipeline import IngestPipeline
from metrics import indicator_value, parse_as_of
from metrics.reconciliation import reconciliation

PIPE = IngestPipeline()


def push(conn: psycopg.Connection, metric: str, points: list[tuple[str, int, float]], operator: str = "cmcc") -> None:
    items = [{"ts": ts, "region": str(r), "value": v, "operator": operator} for ts, r, v in points]
    report = PIPE.submit_items(
        conn, items, source="test", operator="admin", metric=metric, operator_may_vary=operator != "admin"
    )
    assert report.rejected == 0, report.rejections


def value(conn: psycopg.Connection, indicator: str, as_of: str, **kw: object) -> float | None:
    return indicator_value(conn, indicator, as_of=parse_as_of(as_of), **kw).value  # type: ignore[arg-type]


def test_a_province_total_with_no_cities_is_stored_and_used(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", [("2023-06-30T00:00:00+08:00", 360000, 61000)], operator="all")
    assert value(conn, "bs5g_total", "2023-07-01") == 61000
    assert value(conn, "bs5g_total", "2023-07-01", region=100000) == 61000  # the nation sums its provinces


def test_a_province_total_beats_its_cities_and_the_gap_is_reported_with_coverage(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", [("2023-06-30T00:00:00+08:00", 360000, 1000)], operator="all")
    # 9 of the 11 cities report, 100 each: 900 beside the reported 1,000
    cities = [360100, 360200, 360300, 360400, 360500, 360600, 360700, 360800, 360900]
    push(conn, "bs5g_total", [("2023-06-30T00:00:00+08:00", c, 100) for c in cities])
    assert value(conn, "bs5g_total", "2023-07-01") == 1000
    rows = reconciliation(conn, "bs5g_total", region=360000, as_of=parse_as_of("2023-07-01"))
    prov = next(r for r in rows if r.region == 360000 and r.axis == "regions")
    assert (prov.reported, prov.derived, prov.gap) == (1000, 900, 100)
    assert (prov.parts_reporting, prov.parts_total) == (9, 11)
    v = indicator_value(conn, "bs5g_total", region=360000, as_of=parse_as_of("2023-07-01"))
    assert v.coverage is not None and v.coverage.startswith("reported total") and v.reconciliation_gap == 100


def test_a_derived_total_says_how_many_cities_reported(conn: psycopg.Connection) -> None:
    push(conn, "bs5g_total", [("2023-06-30T00:00:00+08:00", c, 100) for c in (360100, 360200, 360300)])
    v = indicator_value(conn, "bs5g_total", as_of=parse_as_of("2023-07-01"))
    assert v.value == 300
    assert (v.parts_reporting, v.parts_total) == (3, 11)


def test_the_all_operators_figure_beats_the_sum_of_the_operators(conn: psycopg.Connection) -> None:
    push(conn, "users_5g", [("2023-06-30T00:00:00+08:00", 360100, 700)], operator="cmcc")
    push(conn, "users_5g", [("2023-06-30T00:00:00+08:00", 360100, 200)], operator="ctcc")
    assert value(conn, "users_5g", "2023-07-01", region=360100) == 900
    push(conn, "users_5g", [("2023-06-30T00:00:00+08:00", 360100, 1000)], operator="all")
    assert value(conn, "users_5g", "2023-07-01", region=360100) == 1000
    assert value(conn, "users_5g", "2023-07-01") == 1000  # and the province takes the city's total
    assert value(conn, "users_5g", "2023-07-01", region=360100, operator="cmcc") == 700
    rows = reconciliation(conn, "users_5g", region=360100, as_of=parse_as_of("2023-07-01"))
    ops = next(r for r in rows if r.region == 360100 and r.axis == "operators")
    assert (ops.reported, ops.derived, ops.gap, ops.parts_reporting) == (1000, 900, 100, 2)


def test_a_county_figure_rolls_up_to_its_city(conn: psycopg.Connection) -> None:
    # 360102 东湖区 and 360111 青山湖区 are districts of Nanchang 360100
    push(conn, "bs5g_total", [("2023-06-30T00:00:00+08:00", 360102, 30), ("2023-06-30T00:00:00+08:00", 360111, 20)])
    assert value(conn, "bs5g_total", "2023-07-01", region=360102) == 30
    assert value(conn, "bs5g_total", "2023-07-01", region=360100) == 50
    assert value(conn, "bs5g_total", "2023-07-01") == 50


def test_year_to_date_builds_give_each_years_volume(conn: psycopg.Connection) -> None:
    # 2022: Jan–Feb together 3,000, then 1–6月 9,000 and 1–12月 20,000; 2023: 1–3月 4,000 counts from zero
    push(
        conn,
        "bs5g_built_ytd",
        [
            ("2022-02-28T00:00:00+08:00", 360000, 3000),
            ("2022-06-30T00:00:00+08:00", 360000, 9000),
            ("2022-12-31T00:00:00+08:00", 360000, 20000),
            ("2023-03-31T00:00:00+08:00", 360000, 4000),
        ],
        operator="all",
    )
    assert value(conn, "bs5g_built_ytd", "2022-03-01") == 3000
    assert value(conn, "bs5g_built_ytd", "2022-12-31") == 20000  # the latest figure of the year
    assert value(conn, "bs5g_built_ytd", "2023-04-01") == 4000  # the new year's first figure counts from zero
    q3 = indicator_value(conn, "bs5g_built_ytd", as_of=parse_as_of("2022-12-31"), start=parse_as_of("2022-03-01")).value
    assert q3 == 17000  # March to December: 20,000 − 3,000


def test_bs5g_new_uses_reported_builds_where_present_and_says_so(conn: psycopg.Connection) -> None:
    # the stock in service grew by 2,000 while 20,000 were newly built (re-counting, decommissioning)
    push(
        conn,
        "bs5g_total",
        [("2021-12-31T00:00:00+08:00", 360000, 40000), ("2022-09-30T00:00:00+08:00", 360000, 42000)],
        operator="all",
    )
    v = indicator_value(conn, "bs5g_new", as_of=parse_as_of("2022-10-01"))
    assert (v.value, v.basis) == (2000, "stock")
    push(conn, "bs5g_built_ytd", [("2022-09-30T00:00:00+08:00", 360000, 20000)], operator="all")
    v = indicator_value(conn, "bs5g_new", as_of=parse_as_of("2022-10-01"))
    assert (v.value, v.basis) == (20000, "reported")


def test_a_total_reported_only_at_the_end_gives_no_increase_of_its_own(conn: psycopg.Connection) -> None:
    # cities grew 100 → 150 each; the province total 1,000 appears only in December: its increase since
    # January is unknown, so the cities' increase (2 × 50) is the province's, not 0 and not 1,000 − 200
    for c in (360100, 360200):
        push(conn, "bs5g_total", [("2022-12-31T00:00:00+08:00", c, 100), ("2023-12-31T00:00:00+08:00", c, 150)])
    push(conn, "bs5g_total", [("2023-12-31T00:00:00+08:00", 360000, 1000)], operator="all")
    assert value(conn, "bs5g_net_new", "2023-12-31") == 100
    assert value(conn, "bs5g_total", "2023-12-31") == 1000  # the level is the reported total
