"""A CSV of a million rows streams through `infrawatch load-csv` with bounded memory.

Bounded means the loader's peak does not grow with the file: the peak resident size of loading 1,000,000
rows is compared with that of loading 200,000 rows by the same command, whose peak is the interpreter,
pandas and one chunk in flight. A loader that held the file (or its rows) in memory would add hundreds of MB
between the two (1M rows × 6 columns as Python objects is far above the margin); what a busy machine varies
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

ROWS = 1_000_000
SMALL_ROWS = 200_000
#: growth of the peak allowed between the small file and the ten times larger one
GROWTH_LIMIT_MB = 96
CEILING_MB = 600


#: Runs the command and, at exit, writes its peak resident size (VmHWM, kB) to the file in argv[1]. VmHWM
#: belongs to the process image, so it starts afresh at exec: the kernel's ru_maxrss instead keeps the
#: high-water mark from before exec, when the forked child still mapped the whole test process (hundreds
#: of MB late in a full run).
_MEASURE = (
    "import atexit, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "def peak():\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
    "    open(out, 'w').write(hwm)\n"
    "atexit.register(peak)\n"
    "sys.argv[0] = 'infrawatch'\n"
    "runpy.run_module('infrawatch', run_name='__main__', alter_sys=True)\n"
)


def _peak_rss_mb(path: Path, rows: int, log: Path) -> float:
    """Peak RSS of `infrawatch load-csv path` (the loader's own process image, from /proc VmHWM)."""
    peak_file = log.with_suffix(".peak")
    with open(log, "wb") as stderr:
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(peak_file), "load-csv", str(path), "--json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=os.environ.copy(),
            check=False,
        )
    report = json.loads(proc.stdout)[0]
    assert report["accepted"] + report["duplicates"] == rows and not report["rejected"], log.read_text()[-2000:]
    return int(peak_file.read_text()) / 1024


@pytest.mark.slow
def test_a_million_rows_load_with_a_peak_that_does_not_grow_with_the_file(db_url, tmp_path):
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
