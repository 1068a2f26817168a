"""`infrawatch status`, the console's overview and the Grafana plan-targets board show the same status,
actual and projection for every target on the same data: the 2023 scenario loaded through CSV, the board's
own SQL run against the real database as Grafana would send it."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from api.console.views import format_value
from collectors.csvfile import load_csv
from dashboards.boards import all_boards
from dashboards.grafana_sql import TimeRange, expand
from metrics import evaluate_targets, load_targets, parse_as_of, store_progress
from simulators.generate import scenario_window
from simulators.run import backfill
from simulators.scenario import load_scenario
from simulators.sinks.csvfile import CsvSink
from tests.api_support import Api, api_fixture  # noqa: F401  (the `api` fixture)
from tests.test_simulators_integration import TEST_VARIANT

AS_OF = "2023-09-30"  # mid-plan: a mix of statuses, shares met early, projections at work


def _board_rows(conn: psycopg.Connection) -> dict[str, dict[str, object]]:
    board = all_boards()["plan-targets"]
    panel = next(p for p in board["panels"] if p["title"] == "Active targets")
    sql = expand(panel["targets"][0]["rawSql"], TimeRange(datetime(2022, 12, 1, tzinfo=UTC), datetime.now(UTC)))
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d.name for d in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    conn.commit()
    return {str(r["Id"]): r for r in rows}


def _console_cards(page: str) -> dict[str, dict[str, str]]:
    cards = {}
    for m in re.finditer(r'<article class="card[^"]*" id="target-([^"]+)".*?</article>', page, re.S):
        body = m.group(0)
        status = re.search(r'data-status="([a-z_]+)"', body)
        figures = dict(re.findall(r'data-figure="([a-z]+)">([^<]*)<', body))
        assert status is not None
        cards[m.group(1)] = {"status": status.group(1), **{k: html.unescape(v) for k, v in figures.items()}}
    return cards


def test_status_console_and_board_agree_on_every_target(
    api: Api, conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = load_scenario("jiangxi-2023", TEST_VARIANT)
    window = scenario_window(sc)
    backfill(sc, CsvSink(sc, tmp_path / "csv"), window.start_us, window.end_us)
    for path in sorted((tmp_path / "csv").iterdir()):
        load_csv(conn, path, operator=None, operator_column_trusted=True)
    load_targets(conn)
    # the board reads the snapshot the scheduler stores; here stored as of the same instant
    store_progress(conn, evaluate_targets(conn, parse_as_of(AS_OF)))
    conn.commit()

    from infrawatch.cli import app

    result = CliRunner().invoke(app, ["status", "--as-of", AS_OF, "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    status = {p["target_id"]: p for p in json.loads(result.stdout)}

    r = api.client.post("/signin", data={"key": api.keys["viewer"]}, follow_redirects=False)
    assert r.status_code == 303
    cards = _console_cards(api.client.get("/", params={"as_of": AS_OF}).text)
    board = _board_rows(conn)

    assert set(status) == set(cards) == set(board) and len(status) == 29
    for tid, p in status.items():
        card, row = cards[tid], board[tid]
        assert p["status"] == card["status"] == row["Status"], (tid, p["status"], card["status"], row["Status"])
        for field, column in (("actual", "Actual"), ("projected", "Projected at deadline")):
            want = p[field]
            assert card[field] == format_value(want, p["unit"]), (tid, field, card[field], want)
            got = row[column]
            assert (got is None and want is None) or got == pytest.approx(want, rel=1e-12), (tid, field, got, want)
    # the scenario gives several verdicts, not one for all
    assert len({p["status"] for p in status.values()}) >= 3
