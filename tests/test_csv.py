"""The CSV collector: long and wide spreadsheets, encodings, timestamps, per-row errors, idempotent reloads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.csvfile import UnusableInput, load_csv

pytestmark = pytest.mark.embedded


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def stored(conn, where="TRUE"):
    return conn.execute(
        f"SELECT metric, region, operator, to_char(ts AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'), value "
        f"FROM observation WHERE {where} ORDER BY 1, 2, 3, 4"
    ).fetchall()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrawatch", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "INFRAWATCH_LOG_JSON": "false"},
        timeout=120,
    )


WIDE_GB18030 = (
    "ts,region,备注,bs5g_total,gigabit_users,城市\n"
    "2023-06,360100,省会,12000,800000,南昌\n"
    "2023-06,360700,,9000,500000,赣州\n"
)


def test_gb18030_wide_spreadsheet_with_chinese_extra_columns_is_read_and_the_extras_reported(conn, tmp_path):
    path = write(tmp_path, "cmcc-2023-06.csv", WIDE_GB18030, "gb18030")
    report = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    assert (report.encoding, report.format, report.rows, report.accepted) == ("gb18030", "wide", 2, 4)
    assert report.ignored_columns == ["备注", "城市"]
    assert stored(conn) == [
        ("bs5g_total", 360100, "cmcc", "2023-06-30 00:00", 12000.0),
        ("bs5g_total", 360700, "cmcc", "2023-06-30 00:00", 9000.0),
        ("gigabit_users", 360100, "cmcc", "2023-06-30 00:00", 800000.0),
        ("gigabit_users", 360700, "cmcc", "2023-06-30 00:00", 500000.0),
    ]


def test_utf8_with_bom_reads_the_same_as_gb18030(conn, tmp_path):
    path = write(tmp_path, "bom.csv", "\ufeff" + WIDE_GB18030)
    report = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    assert (report.encoding, report.accepted, report.ignored_columns) == ("utf-8-sig", 4, ["备注", "城市"])


def test_month_is_stored_as_midnight_on_the_last_day_in_shanghai(conn, tmp_path):
    path = write(tmp_path, "m.csv", "ts,region,metric,value\n2023-06,360100,bs5g_total,1\n")
    load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    [(ts,)] = conn.execute("SELECT ts AT TIME ZONE 'UTC' FROM observation").fetchall()
    assert str(ts) == "2023-06-29 16:00:00"  # = 2023-06-30 00:00 +08:00


def test_naive_timestamps_are_taken_in_the_upload_time_zone(conn, tmp_path):
    path = write(tmp_path, "n.csv", "ts,region,metric,value\n2023-06-30 12:00,360100,bs5g_total,1\n")
    load_csv(conn, path, operator="cmcc", operator_column_trusted=True, timezone="UTC")
    [(ts,)] = conn.execute("SELECT ts AT TIME ZONE 'UTC' FROM observation").fetchall()
    assert str(ts) == "2023-06-30 12:00:00"


def test_one_bad_row_keeps_the_good_rows_and_reports_line_and_column(conn, tmp_path):
    text = (
        "ts,region,metric,value\n"
        "2023-06-30,360100,bs5g_total,10\n"
        "2023-06-30,360200,bs5g_total,ten\n"
        "2023-06-30,360300,bs5g_total,30\n"
        "2023-06-30,999999,bs5g_total,40\n"
    )
    report = load_csv(conn, write(tmp_path, "bad.csv", text), operator="cmcc", operator_column_trusted=True)
    assert (report.rows, report.accepted, report.rejected) == (4, 2, 2)
    assert report.errors == [
        {"line": 3, "column": "value", "error": "value 'ten' is not a number"},
        {
            "line": 5,
            "column": "region",
            "error": "unknown region '999999': no such province in the GB/T 2260 list; use 100000 for the nation",
        },
    ]
    assert [r[1] for r in stored(conn)] == [360100, 360300]
    assert conn.execute("SELECT count(*) FROM quarantine WHERE raw LIKE '%ten%'").fetchone() == (1,)


def test_a_short_row_is_rejected_for_its_missing_fields_and_its_neighbours_stored(conn, tmp_path):
    text = "ts,region,operator,metric,value\n2023-06-30,360100,cmcc,bs5g_total,10\n2023-06-30,360200,cmcc\n"
    report = load_csv(conn, write(tmp_path, "short.csv", text), operator="cmcc", operator_column_trusted=True)
    assert (report.rows, report.accepted, report.rejected) == (2, 1, 1)
    assert report.errors == [
        {
            "line": 3,
            "column": "metric",
            "error": "metric is missing: fill the metric column (a row with fewer fields than the header leaves it empty)",
        }
    ]


def test_wide_cell_errors_name_the_metric_column(conn, tmp_path):
    text = "ts,region,bs5g_total,gigabit_users\n2023-06,360100,-3,5\n"
    report = load_csv(conn, write(tmp_path, "w.csv", text), operator="cmcc", operator_column_trusted=True)
    assert report.errors == [{"line": 2, "column": "bs5g_total", "error": "value -3 is negative; values are ≥ 0"}]
    assert report.accepted == 1  # gigabit_users in the same row is stored


def test_loading_the_same_file_twice_changes_nothing_and_the_second_report_says_so(conn, tmp_path):
    path = write(tmp_path, "cmcc.csv", WIDE_GB18030, "gb18030")
    first = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    before = stored(conn)
    batches = conn.execute("SELECT count(*) FROM observation_history").fetchone()
    second = load_csv(conn, path, operator="cmcc", operator_column_trusted=True)
    assert (second.accepted, second.duplicates, second.revised) == (0, 4, 0)
    assert second.same_as == first.id and second.unchanged
    assert stored(conn) == before
    assert conn.execute("SELECT count(*) FROM observation_history").fetchone() == batches


def test_an_operator_column_that_disagrees_with_the_key_rejects_the_row(conn, tmp_path):
    text = "ts,region,operator,metric,value\n2023-06,360100,cmcc,bs5g_total,1\n2023-06,360200,ctcc,bs5g_total,2\n"
    report = load_csv(conn, write(tmp_path, "o.csv", text), operator="cmcc", operator_column_trusted=False)
    assert report.accepted == 1
    assert report.errors[0]["line"] == 3 and report.errors[0]["column"] == "operator"


def test_an_administrator_file_takes_the_operator_column_and_the_option_fills_blanks(conn, tmp_path):
    text = "ts,region,operator,metric,value\n2023-06,360100,ctcc,bs5g_total,1\n2023-06,360200,,bs5g_total,2\n"
    load_csv(conn, write(tmp_path, "a.csv", text), operator="cucc", operator_column_trusted=True)
    assert [(r[1], r[2]) for r in stored(conn)] == [(360100, "ctcc"), (360200, "cucc")]


def test_rows_with_too_many_fields_are_rejected_not_dropped_silently(conn, tmp_path):
    text = "ts,region,metric,value\n2023-06,360100,bs5g_total,1,extra\n\n2023-06,360200,bs5g_total,2\n"
    report = load_csv(conn, write(tmp_path, "x.csv", text), operator="cmcc", operator_column_trusted=True)
    assert report.accepted == 1
    assert report.errors == [{"line": 2, "column": "", "error": "row has more fields than the header (4)"}]


def test_missing_columns_make_the_file_unusable(conn, tmp_path):
    with pytest.raises(UnusableInput, match="lacks column"):
        load_csv(
            conn,
            write(tmp_path, "u.csv", "ts,metric,value\n2023-06,bs5g_total,1\n"),
            operator="cmcc",
            operator_column_trusted=True,
        )


def test_load_csv_command_exit_codes_say_stored_rejected_or_unusable(db_url, tmp_path):
    good = write(tmp_path, "good.csv", "ts,region,metric,value\n2023-06,360100,bs5g_total,1\n")
    bad = write(tmp_path, "bad.csv", "ts,region,metric,value\n2023-06,360100,bs5g_total,x\n")
    unusable = write(tmp_path, "unusable.csv", "hello,world\n1,2\n")
    ok = cli("load-csv", str(good), "--operator", "cmcc")
    assert ok.returncode == 0, ok.stderr
    assert "all rows stored" in ok.stdout
    partly = cli("load-csv", str(bad), "--operator", "cmcc", "--json")
    assert partly.returncode == 1
    assert json.loads(partly.stdout)[0]["errors"][0]["line"] == 2
    broken = cli("load-csv", str(unusable), "--operator", "cmcc")
    assert broken.returncode == 2
    assert "lacks column" in broken.stderr


def test_a_binary_file_is_unusable_input_not_a_crash(conn, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(UnusableInput, match="not text"):
        load_csv(conn, path, operator="cmcc", operator_column_trusted=True)


def test_quarantine_keeps_each_rejected_row_as_its_csv_fields_and_blank_lines_are_skipped(conn, tmp_path):
    text = (
        "ts,region,operator,metric,value\n"
        "2023-06-30,360100,cmcc,bs5g_total,10\n"
        ",,,,\n"  # blank: skipped, not an error
        "2023-06-30,360200,cmcc,bs5g_total, ten \n"  # a validation error: raw rebuilt when rejected
        "2023-06-30,360300,cmcc\n"  # too few fields: read as empty, so the metric is missing
        "2023-06-30,360400,ctcc,bs5g_total,7\n"  # operator clash under an operator's key
        "2023-06-30,360500,cmcc,bs5g_total,12,extra\n"  # too many fields
        "  ,360600,cmcc,bs5g_total,3\n"  # ts blank but the row is not: a ts error
    )
    report = load_csv(conn, write(tmp_path, "mixed.csv", text), operator="cmcc", operator_column_trusted=False)
    assert (report.rows, report.accepted, report.rejected) == (7, 1, 5)
    assert [(e["line"], e["column"]) for e in report.errors] == [
        (4, "value"),
        (5, "metric"),
        (6, "operator"),
        (7, ""),
        (8, "ts"),
    ]
    rows = conn.execute("SELECT location, raw FROM quarantine ORDER BY location").fetchall()
    assert rows == [
        ("line 4, column value", "2023-06-30,360200,cmcc,bs5g_total, ten "),
        ("line 5, column value", "2023-06-30,360300,cmcc,,"),
        ("line 6", "2023-06-30,360400,ctcc,bs5g_total,7"),
        ("line 7", "2023-06-30,360500,cmcc,bs5g_total,12"),
        ("line 8, column value", "  ,360600,cmcc,bs5g_total,3"),
    ]
