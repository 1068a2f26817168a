"""The indicator explorer, the plan-targets board and GET /v1/series show the same value for the same indicator,
scope and bucket — a gauge, an increase, a ratio and PUE — including the buckets still pending rollup: the
boards' queries are taken from the generated JSON and expanded as Grafana would, the API is called over HTTP."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dashboards.boards import all_boards
from dashboards.grafana_sql import TimeRange, Variable, expand
from ingest.pipeline import IngestPipeline
from metrics import refresh_rollups, upsert_target
from metrics.indicators import Scope
from metrics.query import compute_series
from metrics.rollups import refresh_pending
from metrics.targets import Target
from metrics.timeutil import PLAN_TZ, buckets
from tests.api_support import Api, api_fixture  # noqa: F401  (the `api` fixture)

PIPE = IngestPipeline()
START, END = datetime(2023, 3, 1, tzinfo=PLAN_TZ), datetime(2023, 3, 13, tzinfo=PLAN_TZ)
ROLLED_DAYS = 10  # 1–10 March are loaded and rolled up; 11–12 March arrive afterwards
INDICATORS = {"gauge": "bs5g_total", "increase": "bs5g_new", "ratio": "ipv6_share_mobile", "pue": "dc_pue"}
SCOPES = [(360000, None), (360100, "cmcc")]
#: (city, operator, data centre)
CENTRES = [(360100, "cmcc", "dc-nc-1"), (360100, "ctcc", "dc-nc-2"), (360700, "cmcc", "dc-gz-1")]


def day(k: int, hour: int = 12) -> datetime:
    return START + timedelta(days=k - 1, hours=hour)


def push(
    conn: psycopg.Connection, metric: str, points: list[tuple[datetime, int, float]], op: str, entity: str = ""
) -> None:
    items = [{"ts": t.isoformat(), "region": str(r), "value": v, "entity": entity} for t, r, v in points]
    report = PIPE.submit_items(conn, items, source="test", operator=op, metric=metric)
    assert report.rejected == 0, report.rejections


def load_days(conn: psycopg.Connection, first: int, last: int) -> None:
    """Days first..last (of March 2023): 5G stock per city and operator, mobile traffic and its IPv6 part, and
    both meters of three data centres read at each day's midnight (counters)."""
    ks = range(first, last + 1)
    for op, city, scale in (("cmcc", 360100, 1), ("ctcc", 360100, 2), ("ctcc", 360700, 3)):
        push(conn, "bs5g_total", [(day(k, 9), city, 1000.0 * scale + 7 * k * k) for k in ks], op)
        push(conn, "traffic_mobile_gb", [(day(k), city, 100.0 * scale + k) for k in ks], op)
        push(conn, "ipv6_traffic_mobile_gb", [(day(k), city, 40.0 * scale + 3 * k + (k % 4)) for k in ks], op)
    for i, (city, op, dc) in enumerate(CENTRES, 1):
        push(conn, "dc_energy_it_kwh", [(day(k, 0), city, 1000.0 * i * k + k * k) for k in ks], op, dc)
        push(conn, "dc_energy_total_kwh", [(day(k, 0), city, 1500.0 * i * k + 3 * k * k) for k in ks], op, dc)


def load_with_a_pending_tail(conn: psycopg.Connection) -> None:
    """1–10 March loaded and rolled up, then 11–12 March loaded, and the pending tail published as the
    scheduler's 30-second job does: the 10th to the 12th are read from indicator_pending."""
    load_days(conn, 1, ROLLED_DAYS)
    assert refresh_rollups(conn) > 0
    conn.commit()
    load_days(conn, ROLLED_DAYS + 1, 12)  # newer readings, not rolled up yet
    conn.commit()
    refresh_pending(conn)
    conn.commit()


def panel(stem: str, title: str) -> dict[str, Any]:
    return next(p for p in all_boards()[stem]["panels"] if p["title"] == title)


def rows(conn: psycopg.Connection, sql: str, variables: dict[str, Variable]) -> list[tuple[Any, ...]]:
    conn.rollback()
    return conn.execute(expand(sql, TimeRange(START, END, variables=variables))).fetchall()


def explorer(conn: psycopg.Connection, indicator: str, region: int, operator: str | None) -> dict[datetime, float]:
    variables = {
        "indicator": Variable("indicator", indicator),
        "region": Variable("region", str(region)),
        "interval": Variable("interval", "1d"),
        "operator": Variable("operator", [operator or "cmcc"], multi=True, include_all=True),
    }
    if operator is None:
        p = panel("indicator-explorer", "${indicator} in the region, all operators")
        return {ts: v for ts, v in rows(conn, p["targets"][0]["rawSql"], variables)}
    p = panel("indicator-explorer", "${indicator} by operator")
    return {ts: v for ts, op, v in rows(conn, p["targets"][0]["rawSql"], variables) if op == operator}


def plan_board(conn: psycopg.Connection, target_id: str) -> dict[datetime, float]:
    p = panel("plan-targets", "Actual vs expected trajectory")
    return {ts: v for ts, v in rows(conn, p["targets"][0]["rawSql"], {"target": Variable("target", target_id)})}


def api_series(api: Api, indicator: str, region: int, operator: str | None) -> dict[datetime, float | None]:
    params = {"indicator": indicator, "region": str(region), "interval": "1d"}
    params |= {"start": START.isoformat(), "end": END.isoformat()} | ({"operator": operator} if operator else {})
    r = api.client.get("/v1/series", params=params, headers=api.headers("admin"))
    assert r.status_code == 200, r.text
    return {datetime.fromisoformat(p["ts"]): p["value"] for p in r.json()["points"]}


def test_explorer_plan_board_and_api_agree_bucket_by_bucket_including_the_buckets_pending_rollup(api: Api) -> None:
    with psycopg.connect(api.db_url) as conn:
        load_with_a_pending_tail(conn)
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() != (0,)  # still pending rollup
        for ind in INDICATORS.values():
            for region, op in SCOPES:
                tid = f"agree-{ind}-{region}-{op or 'all'}".replace("_", "-")
                upsert_target(
                    conn,
                    Target(
                        id=tid,
                        title=tid,
                        indicator=ind,
                        region=region,
                        operator=op,
                        comparator=">=",
                        goal=1e9,
                        start=START.date(),
                        deadline=date(2023, 12, 31),
                    ),
                )
        conn.commit()
        starts = buckets(START, END, "1d")
        pending = starts[ROLLED_DAYS - 1 :]  # the 10th's rollups are reached by the 11th's readings too
        for kind, ind in INDICATORS.items():
            for region, op in SCOPES:
                scope = (kind, ind, region, op)
                served = api_series(api, ind, region, op)
                assert list(served) == starts, scope
                from_api = {ts: v for ts, v in served.items() if v is not None}
                assert from_api, scope
                shown = explorer(conn, ind, region, op)
                assert shown.keys() == from_api.keys(), scope
                assert [shown[t] for t in from_api] == pytest.approx(list(from_api.values()), rel=1e-12), scope
                tid = f"agree-{ind}-{region}-{op or 'all'}".replace("_", "-")
                planned = plan_board(conn, tid)
                assert planned.keys() == from_api.keys(), scope
                assert [planned[t] for t in from_api] == pytest.approx(list(from_api.values()), rel=1e-12), scope
                # the pending buckets hold the newer readings: as computed from the observations alone
                computed = compute_series(conn, ind, Scope(region, op), starts, "1d", increase_start=START)
                assert [served[t] for t in pending] == pytest.approx(computed[ROLLED_DAYS - 1 :], rel=1e-12), scope
                assert served[starts[-1]] is not None, scope
        # the increase is shown cumulated since the first bucket everywhere (not per bucket)
        new = api_series(api, "bs5g_new", 360000, None)
        assert new[starts[-1]] == pytest.approx(7 * (12 * 12 - 1) * 3)  # three series, each 7k² from k = 1


def test_without_a_published_tail_the_api_still_answers_from_the_observations(api: Api) -> None:
    """Between two publications of the pending tail the API computes what is pending live; the boards show the
    last published tail (the only time they can differ: up to the pending job's interval)."""
    with psycopg.connect(api.db_url) as conn:
        load_days(conn, 1, ROLLED_DAYS)
        refresh_rollups(conn)
        conn.commit()
        load_days(conn, ROLLED_DAYS + 1, 12)
        conn.commit()
        starts = buckets(START, END, "1d")
        computed = compute_series(conn, "dc_pue", Scope(360000), starts, "1d")
        served = list(api_series(api, "dc_pue", 360000, None).values())
        assert [v is None for v in served] == [v is None for v in computed] == [True] + [False] * 11
        assert served[1:] == pytest.approx(computed[1:], rel=1e-12)
        shown = explorer(conn, "dc_pue", 360000, None)
        assert starts[-1] not in shown  # not published yet
        refresh_pending(conn)
        conn.commit()
        assert explorer(conn, "dc_pue", 360000, None)[starts[-1]] == pytest.approx(computed[-1], rel=1e-12)


def board_panel(
    conn: psycopg.Connection, stem: str, title: str, variables: dict[str, Variable]
) -> list[tuple[Any, ...]]:
    p = panel(stem, title)
    return rows(conn, p["targets"][0]["rawSql"], variables)


def test_contribution_boards_show_what_the_api_serves_for_each_city_and_operator(api: Api) -> None:
    """The cities, operators and data-centre boards read iw_indicator_series too: a city's or an operator's series,
    its value at the latest bucket and the whole it is a share of are GET /v1/series for the same scope — an
    increase cumulated since the start of the time range, not the increase within each bucket."""
    with psycopg.connect(api.db_url) as conn:
        load_with_a_pending_tail(conn)
        names = dict(conn.execute("SELECT code::text, name FROM iw_region WHERE code IN (360100, 360700)").fetchall())
        names |= dict(conn.execute("SELECT id, name || ' ' || name_zh FROM operator WHERE id = 'cmcc'").fetchall())
        cases = [
            ("cities", "city", "360100", None, {}),
            ("operators", "operator", "cmcc", "cmcc", {"region": Variable("region", "360000")}),
        ]
        for ind in ("bs5g_new", "bs5g_total", "ipv6_share_mobile"):
            for stem, by, part, op, extra in cases:
                scope = (stem, ind, part)
                variables = {"indicator": Variable("indicator", ind), "interval": Variable("interval", "1d"), **extra}
                region = int(part) if by == "city" else 360000
                from_api = {t: v for t, v in api_series(api, ind, region, op).items() if v is not None}
                assert from_api, scope
                series = board_panel(conn, stem, f"${{indicator}} per {by}", variables)
                shown = {t: v for t, name, v in series if name == names[part]}
                assert shown.keys() == from_api.keys(), scope
                assert [shown[t] for t in from_api] == pytest.approx(list(from_api.values()), rel=1e-12), scope
                latest = max(from_api)
                bars = dict(
                    board_panel(conn, stem, f"${{indicator}} by {by}, latest bucket in the time range", variables)
                )
                assert bars[names[part]] == pytest.approx(from_api[latest], rel=1e-12), scope
                whole = api_series(api, ind, 360000, None)[latest]
                shares = {
                    r[0]: r[1:]
                    for r in board_panel(conn, stem, f"Share of the total per {by}, latest bucket", variables)
                }
                value, total, share = shares[names[part]]
                assert (value, total) == pytest.approx((from_api[latest], whole), rel=1e-12), scope
                assert share == pytest.approx(100 * from_api[latest] / whole, rel=1e-12), scope
                if ind != "ipv6_share_mobile":  # counts add up: the cities' (operators') shares make the whole
                    assert sum(s for _, _, s in shares.values()) == pytest.approx(100), scope
        # bs5g_new cumulated since the first bucket: Nanchang's two operators, each 7k² from k = 1 (scale 1 and 2)
        assert dict(
            board_panel(
                conn,
                "cities",
                "${indicator} by city, latest bucket in the time range",
                {"indicator": Variable("indicator", "bs5g_new"), "interval": Variable("interval", "1d")},
            )
        )[names["360100"]] == pytest.approx(2 * 7 * (12 * 12 - 1))
        # the data-centre board's city PUE, pending days included
        pue = {
            t: v
            for t, name, v in board_panel(conn, "data-centres", "Daily PUE per city", {})
            if name == names["360100"]
        }
        from_api = {t: v for t, v in api_series(api, "dc_pue", 360100, None).items() if v is not None}
        assert pue.keys() == from_api.keys() and max(pue) == buckets(START, END, "1d")[-1]
        assert [pue[t] for t in from_api] == pytest.approx(list(from_api.values()), rel=1e-12)


def test_the_data_centre_board_shows_each_centre_as_its_own_series_pending_days_included(api: Api) -> None:
    """iw_entity_series (every centre in one read, what the data-centre board selects) gives, centre by centre,
    the buckets of iw_indicator_series for that centre's scope that hold a value, the pending days included;
    the board's table shows each centre's last day. (The rollups keep one entity indicator, PUE:
    metrics.rollups.rollups_keep.)"""
    with psycopg.connect(api.db_url) as conn:
        load_with_a_pending_tail(conn)
        ind = "dc_pue"
        every = conn.execute(
            "SELECT entity, region, operator, ts, value, pending, current FROM iw_entity_series(%s, '1d', %s, %s)",
            (ind, START, END),
        ).fetchall()
        assert {(r, o, e) for e, r, o, *_ in every} == set(CENTRES), ind
        assert any(p for *_, p, _ in every) and not all(p for *_, p, _ in every), ind
        for region, op, dc in CENTRES:
            one = conn.execute(
                "SELECT ts, value, pending, current FROM iw_indicator_series(%s, %s, %s, %s, %s, '1d', %s)"
                " WHERE value IS NOT NULL",
                (ind, region, op, START, END, dc),
            ).fetchall()
            mine = sorted((t, v, p, c) for e, _, _, t, v, p, c in every if e == dc)
            assert [(t, p, c) for t, _, p, c in mine] == [(t, p, c) for t, _, p, c in one], (ind, dc)
            assert [v for _, v, _, _ in mine] == pytest.approx([v for _, v, _, _ in one], rel=1e-12), (ind, dc)
        table = board_panel(conn, "data-centres", "Data centres, PUE of the last day in the time range", {})
        newest = buckets(START, END, "1d")[-1]
        for region, op, dc in CENTRES:
            [(_, pue, _, _)] = conn.execute(
                "SELECT * FROM iw_indicator_series('dc_pue', %s, %s, %s, %s, '1d', %s) WHERE ts = %s",
                (region, op, START, END, dc, newest),
            ).fetchall()
            [row] = [r for r in table if r[0] == dc]
            assert (row[2], row[3]) == (op, newest) and row[4] == pytest.approx(pue, rel=1e-12), dc
