"""A 100 MB CSV through POST /v1/uploads on a live `infrawatch serve`: the server's peak memory grows by
less than 150 MB (the file is streamed to disk and loaded in chunks, never held whole)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest

from api.keys import create_key
from core.embedded import free_port, wait_for_port
from core.settings import get_settings

SIZE_MB = int(os.environ.get("INFRAWATCH_TEST_UPLOAD_MB", "100"))
CITIES = [360100 + 100 * i for i in range(11)]
METRICS = ["traffic_mobile_gb", "ipv6_traffic_mobile_gb", "bs5g_energy_kwh"]


def write_csv(path: Path, size: int) -> int:
    """A long-format CSV of hourly figures (11 cities × 3 metrics an hour) of at least `size` bytes; rows."""
    start = datetime(2018, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    written = rows = hour = 0
    with open(path, "w") as f:
        f.write("ts,region,metric,value\n")
        while written < size:
            ts = (start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
            block = "".join(f"{ts},{c},{m},{(hour * 7 + c) % 100000 / 10:.1f}\n" for c in CITIES for m in METRICS)
            f.write(block)
            written += len(block)
            rows += len(CITIES) * len(METRICS)
            hour += 1
    return rows


def peak_rss_kb(pid: int) -> int:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def multipart_body(path: Path, boundary: str) -> tuple[Iterator[bytes], int]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                yield block
        yield tail

    return chunks(), len(head) + path.stat().st_size + len(tail)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, int, str]]:
    with psycopg.connect(db_url) as conn:
        key, _ = create_key(conn, role="operator", operator="cmcc", name="big", secret=get_settings().secret_key)
    port = free_port()
    env = {**os.environ, "INFRAWATCH_DATABASE_URL": db_url, "INFRAWATCH_DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "serve", "--no-scheduler", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        yield f"http://127.0.0.1:{port}", proc.pid, key
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.mark.slow
def test_a_100_mb_upload_grows_the_server_memory_by_less_than_150_mb(
    server: tuple[str, int, str], tmp_path: Path, db_url: str
) -> None:
    base, pid, key = server
    csv = tmp_path / "big.csv"
    rows = write_csv(csv, SIZE_MB * 1_000_000)
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=900) as client:
        # warm up: the first request imports and caches what every later one needs
        small = client.post("/v1/uploads", files={"file": ("s.csv", b"ts,region,metric,value\n")}, headers=auth)
        assert small.status_code == 201, small.text
        before = peak_rss_kb(pid)
        body, length = multipart_body(csv, "iwboundary")
        started = time.monotonic()
        r = client.post(
            "/v1/uploads",
            content=body,
            headers={**auth, "content-type": "multipart/form-data; boundary=iwboundary", "content-length": str(length)},
        )
        elapsed = time.monotonic() - started
    after = peak_rss_kb(pid)
    assert r.status_code == 201, r.text
    report = r.json()
    assert (report["rows"], report["accepted"], report["rejected"]) == (rows, rows, 0)
    growth_mb = (after - before) / 1024
    print(f"{SIZE_MB} MB, {rows} rows in {elapsed:.0f} s; peak RSS {before // 1024} → {after // 1024} MB")
    assert growth_mb < 150, f"peak RSS grew by {growth_mb:.0f} MB"
    assert list((tmp_path / "data" / "uploads").iterdir()) == []  # the temporary file is gone
