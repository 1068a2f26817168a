"""The inbox collector: dropped files are loaded and moved to done/ or failed/ with their report."""

import json

import pytest

from collectors.inbox import watch_inbox

pytestmark = pytest.mark.embedded


def test_inbox_moves_good_files_to_done_and_bad_ones_to_failed_with_reports(db_url, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text("ts,region,metric,value\n2023-06,360100,bs5g_total,10\n")
    (inbox / "partly.csv").write_text("ts,region,metric,value\n2023-06,360100,gigabit_users,x\n")
    (inbox / "unusable.csv").write_text("a,b\n1,2\n")
    (inbox / "notes.md").write_text("not a spreadsheet")

    watch_inbox(inbox, operator="cmcc", once=True)

    done = sorted(p.name for p in (inbox / "done").iterdir())
    failed = sorted(p.name for p in (inbox / "failed").iterdir())
    assert [n.split("-", 1)[1] for n in done] == ["good.csv", "good.csv.report.json"]
    assert sorted(n.split("-", 1)[1] for n in failed) == [
        "partly.csv",
        "partly.csv.report.json",
        "unusable.csv",
        "unusable.csv.report.json",
    ]
    assert (inbox / "notes.md").exists()  # other files are left alone
    partly = json.loads(next((inbox / "failed").glob("*partly.csv.report.json")).read_text())
    assert partly["errors"] == [{"line": 2, "column": "value", "error": "value 'x' is not a number"}]
    unusable = json.loads(next((inbox / "failed").glob("*unusable.csv.report.json")).read_text())
    assert "lacks column" in unusable["error"]
