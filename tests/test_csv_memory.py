"""A CSV of two million rows streams through `infrawatch load-csv` with bounded memory.

Bounded means the loader's peak does not grow with the file: the peak resident size of loading 2,000,000
rows is compared with that of loading 200,000 rows by the same command, whose peak is the interpreter,
pandas and one chunk in flight. A loader that held the file (or its rows) in memory would add hundreds of MB
between the two (2M rows × 6 columns as Python objects is far above the margin); what a busy machine varies
(a read-ahead chunk more or less, allocator slack) stays within it. An absolute ceiling keeps the base
itself honest.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from csvgen import write_csv

ROWS = 2_000_000
SMALL_ROWS = 200_000
#: growth of the peak allowed between the small file and the ten times larger one
GROWTH_LIMIT_MB = 96
CEILING_MB = 600


def _peak_rss_mb(path: Path, rows: int, log: Path) -> float:
    """Peak RSS of `infrawatch load-csv path` (the loader's own process, as the kernel counted it)."""
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "infrawatch", "load-csv", str(path), "--json"],
                                stdout=subprocess.PIPE, stderr=stderr, env=os.environ.copy())
        out = proc.stdout.read()  # type: ignore[union-attr]
        _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads(out)[0]
    assert report["accepted"] + report["duplicates"] == rows and not report["rejected"], log.read_text()[-2000:]
    return rusage.ru_maxrss / 1024


@pytest.mark.slow
def test_two_million_rows_load_with_a_peak_that_does_not_grow_with_the_file(db_url, tmp_path):
    peaks = {}
    for rows in (SMALL_ROWS, ROWS):
        path = tmp_path / f"rows-{rows}.csv"
        write_csv(path, rows)
        peaks[rows] = _peak_rss_mb(path, rows, tmp_path / f"load-{rows}.log")
        path.unlink()
    growth = peaks[ROWS] - peaks[SMALL_ROWS]
    assert growth < GROWTH_LIMIT_MB, f"peak RSS {peaks[SMALL_ROWS]:.0f} MB → {peaks[ROWS]:.0f} MB"
    assert peaks[ROWS] < CEILING_MB, f"peak RSS {peaks[ROWS]:.0f} MB"
    print(f"peak RSS {peaks[SMALL_ROWS]:.0f} MB at {SMALL_ROWS:,} rows, {peaks[ROWS]:.0f} MB at {ROWS:,} rows")
