"""Benchmark: a one-year daily series for 11 cities × 5 operators, and a progress evaluation of all default
targets, with rollups in place (issue 4). Creates its own database on the server of INFRAWATCH_DATABASE_URL.

    INFRAWATCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python bench/bench_queries.py \
        [--record [--label=after]]   # --record appends the table to docs/benchmarks.md
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

import psycopg

from core.settings import get_settings
from ingest.pipeline import IngestPipeline
from reference.regions import CITIES

OPERATORS = ["cmcc", "ctcc", "cucc", "cbn", "tower"]
YEAR = 2023


def _with_db(url: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo("", **params)


def populate(conn: psycopg.Connection) -> int:
    """Daily traffic (all and IPv6) and 5G base-station counts for every city and operator for a year."""
    pipe = IngestPipeline()
    n = 0
    days = [date(YEAR, 1, 1) + timedelta(days=k) for k in range(365)]
    for op_i, op in enumerate(OPERATORS):
        for metric, value in (
            ("traffic_mobile_gb", lambda c, k: 1000 + 10 * c + k),
            ("ipv6_traffic_mobile_gb", lambda c, k: 400 + 5 * c + k),
            ("bs5g_total", lambda c, k, op_i=op_i: 3000 + 100 * c + 5 * k + op_i),
        ):
            items = [
                {"ts": f"{day}T00:00:00+08:00", "region": str(c), "value": value(i, k)}
                for k, day in enumerate(days)
                for i, c in enumerate(CITIES)
            ]
            n += pipe.submit_items(conn, items, source="bench", operator=op, metric=metric).accepted
    return n


def timed(fn: Callable[[], object], runs: int = 7) -> tuple[float, float]:
    fn()  # warm up
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms), max(ms)


def main() -> None:
    import metrics
    from storage import upgrade

    server = os.environ.get("INFRAWATCH_DATABASE_URL") or get_settings().database_url
    name = "iw_bench_queries"
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(server, name)
    upgrade(url)
    try:
        with psycopg.connect(url) as conn:
            t = time.perf_counter()
            rows = populate(conn)
            print(f"loaded {rows} observations in {time.perf_counter() - t:.1f} s")
            conn.execute("ANALYZE")  # what autovacuum does after a load
            t = time.perf_counter()
            written = metrics.refresh_rollups(conn)
            print(f"rollups: {written} rows in {time.perf_counter() - t:.1f} s")
            conn.execute("ANALYZE")  # what the scheduler's rollups job does after a large rebuild (metrics/jobs.py)
            metrics.load_targets(conn)
            start = datetime(YEAR, 1, 1, tzinfo=metrics.PLAN_TZ)
            end = datetime(YEAR + 1, 1, 1, tzinfo=metrics.PLAN_TZ)
            as_of = metrics.parse_as_of(f"{YEAR}-09-30")
            cases: dict[str, Callable[[], object]] = {
                f"series {ind} 1d, province, {YEAR}": functools.partial(
                    metrics.indicator_series, conn, ind, start=start, end=end, interval="1d"
                )
                for ind in ("traffic_mobile_gb", "ipv6_share_mobile", "bs5g_total", "bs5g_new")
            }
            cases["series traffic_mobile_gb 1d, province, from observations"] = lambda: _raw(conn, start, end)
            cases["evaluate_targets (16 default targets)"] = lambda: metrics.evaluate_targets(conn, as_of)
            table = ["| query | median ms | max ms |", "| --- | ---: | ---: |"]
            for label, fn in cases.items():
                med, worst = timed(fn)
                print(f"{label}: median {med:.1f} ms, max {worst:.1f} ms")
                table.append(f"| {label} | {med:.1f} | {worst:.1f} |")
            if "--record" in sys.argv:
                from common import append_section

                label = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--label=")), "")
                append_section(
                    "Indicator series and target progress" + (f" ({label})" if label else ""),
                    "uv run python bench/bench_queries.py --record",
                    f"{rows:,} daily observations through the pipeline; median and max of 7 runs after a warm-up, "
                    "in-process.\n\n" + "\n".join(table) + "\n",
                )
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            with psycopg.connect(server, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _raw(conn: psycopg.Connection, start: datetime, end: datetime) -> object:
    from metrics.indicators import Scope
    from metrics.query import compute_series
    from metrics.timeutil import buckets

    return compute_series(conn, "traffic_mobile_gb", Scope(), buckets(start, end, "1d"), "1d")


if __name__ == "__main__":
    main()
