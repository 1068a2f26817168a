"""A CSV of two million rows streams through `infrawatch load-csv` with bounded memory."""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from csvgen import write_csv

ROWS = 2_000_000
LIMIT_KB = 400 * 1024


@pytest.mark.slow
def test_two_million_rows_load_with_peak_memory_under_400_mb(db_url, tmp_path):
    path = tmp_path / "big.csv"
    write_csv(path, ROWS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "load-csv", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    _, _, rusage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    assert '"accepted": 2000000' in out, proc.stderr.read().decode()[-2000:]
    assert rusage.ru_maxrss < LIMIT_KB, f"peak RSS {rusage.ru_maxrss / 1024:.0f} MB"
