"""Hostile CSV files over the command line and POST /v1/uploads: bad rows are rejected on their own (NUL,
huge integers, rows with too many fields, a quote that never closes) while the others are stored; an
oversized header is a clear exit 2 or 413 naming the limit, never a traceback or a 500."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from collectors.csvfile import load_csv
from tests.api_support import api_fixture, observation_count  # noqa: F401  (the `api` fixture)

HEADER = "ts,region,metric,value\n"
HUGE = "9" * 400


def _regions(db_url: str) -> list[int]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT region FROM observation ORDER BY region")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrawatch", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "INFRAWATCH_LOG_JSON": "false", "COLUMNS": "300"},
        timeout=120,
    )


def test_nul_and_huge_integer_rows_are_rejected_and_their_neighbours_stored(conn, db_url, tmp_path):
    path = tmp_path / "hostile.csv"
    path.write_text(
        HEADER
        + "2023-06,360100,bs5g_total,10\n"
        + "2023-06,360200,bs5g_total,1\x002\n"  # NUL inside the value
        + "2023-06,360300,bs5g\x00_total,12\n"  # NUL inside the metric
        + f"2023-06,360400,bs5g_total,{HUGE}\n"
        + "2023-06,360500,bs5g_total,14\n"
    )
    report = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    assert (report.rows, report.accepted, report.rejected) == (5, 2, 3)
    errors = {e["line"]: e for e in report.errors}
    assert "control character (U+0000)" in errors[3]["error"] and errors[3]["column"] == "value"
    assert "control character (U+0000)" in errors[4]["error"] and errors[4]["column"] == "metric"
    assert "too large" in errors[5]["error"]
    assert _regions(db_url) == [360100, 360500]
    raws = [r[0] for r in conn.execute("SELECT raw FROM quarantine ORDER BY id")]
    assert any("1\\u00002" in raw for raw in raws)  # the raw row kept, NUL escaped


def test_a_row_with_many_more_fields_than_the_header_is_rejected_alone(conn, db_url, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(
        HEADER
        + "2023-06,360100,bs5g_total,10\n"
        + "2023-06,360200,bs5g_total,11,1,2,3,4,5,6,7,8,9,10,11,12\n"
        + "2023-06,360300,bs5g_total,12\n"
    )
    report = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    assert (report.rows, report.accepted, report.rejected) == (3, 2, 1)
    assert report.errors == [{"line": 3, "column": "", "error": "row has more fields than the header (4)"}]
    assert _regions(db_url) == [360100, 360300]


def test_an_unbalanced_quote_rejects_from_that_row_on_with_the_reason(conn, db_url, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text(
        HEADER + "2023-06,360100,bs5g_total,10\n" + '2023-06,"360200,bs5g_total,11\n' + "2023-06,360300,bs5g_total,12\n"
    )
    report = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    assert (report.accepted, report.rejected) == (1, 1)
    assert report.errors[0]["line"] == 3
    assert "never closes" in report.errors[0]["error"]
    assert _regions(db_url) == [360100]


def test_an_oversized_header_is_exit_2_on_the_command_line_naming_the_limit(db_url, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("ts,region,bs5g_total," + "x" * 200_000 + "\n2023-06,360100,10,\n")
    done = _cli("load-csv", str(path), "--operator", "cmcc")
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "64 KiB" in said and "Traceback" not in said
    assert observation_count(db_url) == 0


def test_an_oversized_header_is_413_over_http_and_hostile_rows_are_per_row(api):
    big = ("ts,region,bs5g_total," + "x" * 200_000 + "\n2023-06,360100,10,\n").encode()
    r = api.client.post("/v1/uploads", files={"file": ("wide.csv", big, "text/csv")}, headers=api.headers("cmcc"))
    assert r.status_code == 413, r.text
    assert "64 KiB" in r.text
    rows = (
        HEADER
        + "2023-06,360100,bs5g_total,10\n2023-06,360200,bs5g_total,1\x002\n"
        + f"2023-06,360300,bs5g_total,{HUGE}\n"
    )
    r = api.client.post(
        "/v1/uploads", files={"file": ("rows.csv", rows.encode(), "text/csv")}, headers=api.headers("cmcc")
    )
    assert r.status_code == 201, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 2)
    assert observation_count(api.db_url) == 1


def test_a_header_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    from collectors.csvfile.reader import MAX_HEADER_CHARS, read_header

    path = tmp_path / "edge.csv"
    head = "ts,region,bs5g_total,"
    path.write_text(head + "y" * (MAX_HEADER_CHARS - len(head) - 1) + "\n")
    assert len(read_header(path, "utf-8")) == 4


def test_an_unbalanced_quote_in_the_first_row_is_a_rejection_not_a_failure(conn, db_url, tmp_path):
    # pandas meets this quote while it opens the file, before the first chunk: still one row's rejection
    path = tmp_path / "quote-first.csv"
    path.write_text(HEADER + '2023-06,"360100,bs5g_total,10\n' + "2023-06,360300,bs5g_total,12\n")
    report = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    assert (report.accepted, report.rejected) == (0, 1)
    assert report.errors[0]["line"] == 2 and "never closes" in report.errors[0]["error"]
    assert _regions(db_url) == []
