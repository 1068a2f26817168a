"""Every panel query of every board runs against the jiangxi-2023 scenario, with Grafana's macros and
variables expanded as Grafana would, and returns the columns its panel type needs — and rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dashboards.boards import all_boards
from dashboards.check import check_board
from dashboards.grafana_sql import TimeRange, Variable, expand
from tests.scenario_support import AS_OF, SHANGHAI, ScenarioDatabases

pytestmark = pytest.mark.slow

#: Dashboard time range for the check: the scenario's data (2022-12-31 … 2023-12-31) and today's
#: ingest batches (received now), like an administrator choosing "from 2022-12" in the picker.
RANGE_START = datetime(2022, 12, 1, tzinfo=UTC)


# -- the scenario: a clone of the session's jiangxi-2023 database (loaded once, shared with the bulletins) --


@pytest.fixture(scope="module")
def scenario_db(jiangxi_2023: ScenarioDatabases) -> Iterator[str]:
    with jiangxi_2023.clone("dash") as url:
        yield url


def _problems(conn: psycopg.Connection, *, all_values: bool) -> list[str]:
    out = []
    for stem, board in all_boards().items():
        results = check_board(conn, stem, board, start=RANGE_START, end=datetime.now(UTC), all_values=all_values)
        out += [r.describe() for r in results if r.problem]
    return out


@pytest.mark.parametrize("stem", sorted(all_boards()))
def test_every_panel_query_runs_and_returns_what_its_panel_needs(scenario_db: str, stem: str) -> None:
    board = all_boards()[stem]
    with psycopg.connect(scenario_db) as conn:
        conn.execute("SET statement_timeout = '20s'")
        conn.commit()
        # Once with multi-value variables on "All", once with one value each (Grafana quotes both ways).
        results = check_board(conn, stem, board, start=RANGE_START, end=datetime.now(UTC), all_values=True)
        results += check_board(conn, stem, board, start=RANGE_START, end=datetime.now(UTC), all_values=False)
    assert len(results) == 2 * sum(len(p.get("targets", [])) for p in board["panels"])
    problems = [r.describe() for r in results if r.problem]
    assert not problems, "\n\n".join(problems)


def test_the_panels_run_under_grafanas_read_only_role(scenario_db: str) -> None:
    """Grafana connects as a member of infrawatch_grafana: every query works with only its grants,
    and writing is refused."""
    with psycopg.connect(scenario_db) as conn:
        conn.execute("SET ROLE infrawatch_grafana")
        conn.commit()  # session-wide, so the rollbacks between queries keep it
        problems = _problems(conn, all_values=True)
        assert not problems, "\n\n".join(problems)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM target")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT raw FROM quarantine")


def test_the_feeds_board_calls_a_feed_stale_exactly_when_the_metrics_layer_does(scenario_db: str) -> None:
    """The freshness table and metrics.freshness read the one published rule (iw_feed_freshness); they agree
    on every feed."""
    from metrics import feed_freshness

    board = all_boards()["feeds"]
    panel = next(p for p in board["panels"] if p["title"] == "Freshness per operator and metric")
    now = datetime.now(UTC)
    sql = expand(panel["targets"][0]["rawSql"], TimeRange(RANGE_START, now))
    with psycopg.connect(scenario_db) as conn:
        shown = {(op, metric): state for op, metric, *_, state, _regions in conn.execute(sql)}
        expected: dict[tuple[str, str], bool] = {}
        for f in feed_freshness(conn, now=now):
            key = (f.operator, f.metric)
            expected[key] = expected.get(key, True) and f.stale  # the newest region decides
    assert shown == {k: "stale" if v else "fresh" for k, v in expected.items()}


def test_the_check_command_reports_every_panel_ok_on_the_scenario(
    scenario_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from core.settings import get_settings
    from infrawatch.cli import app

    monkeypatch.setenv("INFRAWATCH_DATABASE_URL", scenario_db)
    get_settings.cache_clear()
    try:
        # 2022-12 … today, like the other checks
        days = (datetime.now(UTC) - RANGE_START).days + 1
        result = CliRunner().invoke(app, ["dashboards", "check", "--days", str(days)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    assert result.output.count("✓") == sum(
        len(p.get("targets", [])) for b in all_boards().values() for p in b["panels"]
    )


@pytest.mark.parametrize("target_id", ["jx-2023-5g-new", "jx-2023-gigabit-users"])
def test_the_trajectory_ends_at_the_actual_the_metrics_layer_reports(scenario_db: str, target_id: str) -> None:
    """The progress chart's last point at the deadline is the target's actual: for an increase target
    (new 5G base stations) the daily increases cumulated since the start, for a level the level."""
    board = all_boards()["plan-targets"]
    panel = next(p for p in board["panels"] if p["title"] == "Actual vs expected trajectory")
    deadline_end = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    time_range = TimeRange(
        RANGE_START, deadline_end - timedelta(seconds=1), variables={"target": Variable("target", target_id)}
    )
    with psycopg.connect(scenario_db) as conn:
        rows = conn.execute(expand(panel["targets"][0]["rawSql"], time_range)).fetchall()
        (actual,) = conn.execute("SELECT actual FROM target_progress WHERE target_id = %s", [target_id]).fetchone()
        expected_rows = conn.execute(expand(panel["targets"][1]["rawSql"], time_range)).fetchall()
        (goal,) = conn.execute("SELECT goal FROM target_progress WHERE target_id = %s", [target_id]).fetchone()
    assert rows[-1][1] == pytest.approx(actual, rel=1e-9)
    # the planned trajectory reaches the goal at the deadline (its last day starts 24 h before)
    assert expected_rows[-1][1] == pytest.approx(goal, rel=0.01)


def test_the_reconciliation_panel_shows_the_gaps_the_api_computes(scenario_db: str) -> None:
    """The explorer's reconciliation panel reads what the metrics layer published: the same reported totals,
    sums of parts, gaps and coverage as metrics.reconciliation (GET /v1/reconciliation) as of the same instant,
    for the province and its cities (the scenario's official province total of 5G base stations)."""
    from metrics.reconciliation import reconciliation

    board = all_boards()["indicator-explorer"]
    panel = next(p for p in board["panels"] if p["title"].startswith("Reconciliation"))
    variables = {"indicator": Variable("indicator", "bs5g_total"), "region": Variable("region", "360000")}
    time_range = TimeRange(RANGE_START, datetime.now(UTC), variables=variables)
    with psycopg.connect(scenario_db) as conn:
        shown = conn.execute(expand(panel["targets"][0]["rawSql"], time_range)).fetchall()
        computed = [
            r
            for r in reconciliation(conn, "bs5g_total", region=360000, as_of=AS_OF)
            if r.axis == "regions" and r.operator == "all"
        ]
    assert shown, "the panel shows no gap although the scenario publishes a province total beside its cities"
    assert [(s[2], s[3], s[4], s[5]) for s in shown] == [
        (r.reported, r.derived, r.gap, f"{r.parts_reporting} of {r.parts_total}") for r in computed
    ]
    assert {s[1] for s in shown} == {AS_OF}
