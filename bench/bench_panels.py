"""Panel and API query latency (issue 10): p50/p95 of every Grafana panel query (as Grafana expands it) and of
GET /v1/series and GET /v1/progress on a live `infrawatch serve --no-scheduler`, on a database holding one
year of daily statistics for 11 cities × 5 operators and 90 days of 5-minute meter readings (facility and IT
energy) for N data centres, after `refresh_rollups`. Creates and drops its own database (`--keep` keeps it,
`--reuse` measures a kept one again without loading). Appends to docs/benchmarks.md.

    uv run python bench/bench_panels.py [--dcs 500] [--runs 20] [--keep] [--reuse] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import append_section, fresh_database

from core.embedded import free_port, wait_for_port
from reference.regions import CITIES

OPERATORS = ["cmcc", "ctcc", "cucc", "cbn", "tower"]
SECRET = "bench-panels-secret-key-0123456789abcdef"


def load_daily(conn: psycopg.Connection, days: list[date]) -> int:
    """Daily mobile traffic (all and IPv6) and 5G base stations per city and operator, through the pipeline."""
    from ingest.pipeline import IngestPipeline

    pipe, n = IngestPipeline(), 0
    for op_i, op in enumerate(OPERATORS):
        for metric, base, step in (
            ("traffic_mobile_gb", 1000, 1),
            ("ipv6_traffic_mobile_gb", 400, 1),
            ("bs5g_total", 3000 + op_i, 5),
        ):
            items = [
                {"ts": f"{day}T00:00:00+08:00", "region": str(c), "value": base + 10 * i + step * k}
                for k, day in enumerate(days)
                for i, c in enumerate(CITIES)
            ]
            n += pipe.submit_items(conn, items, source="bench", operator=op, metric=metric).accepted
    return n


def load_meters(conn: psycopg.Connection, dcs: int, start: datetime, end: datetime) -> int:
    """Cumulative facility and IT energy meters of `dcs` data centres every 5 minutes, generated in the server
    (one INSERT … SELECT a day), with the freshness and dirty-day records the pipeline would leave."""
    conn.execute("SELECT iw_ensure_partitions(%s, %s)", (start, end))
    # the meters' series first (observation_point holds their ids), then every reading
    conn.execute(
        """
        INSERT INTO series (metric, region, operator, entity)
        SELECT m, (%(cities)s::int[])[1 + d %% 11], (%(ops)s::text[])[1 + d %% 5], 'dc' || lpad(d::text, 4, '0')
        FROM generate_series(0, %(dcs)s - 1) d, unnest(ARRAY['dc_energy_total_kwh', 'dc_energy_it_kwh']) m
        ON CONFLICT DO NOTHING
        """,
        {"cities": list(CITIES), "ops": OPERATORS, "dcs": dcs},
    )
    n = 0
    day = start
    while day < end:
        nxt = min(day + timedelta(days=1), end)
        cur = conn.execute(
            """
            INSERT INTO observation_point (series_id, ts, value, batch_id)
            SELECT s.id, ts, extract(epoch FROM ts - %(start)s) / 300 * (40 + d %% 7) * m.share, 0
            FROM generate_series(0, %(dcs)s - 1) d,
                 generate_series(%(day)s::timestamptz, %(next)s::timestamptz - interval '5 minutes',
                                 interval '5 minutes') ts,
                 (VALUES ('dc_energy_total_kwh', 1.0), ('dc_energy_it_kwh', 0.7)) m(metric, share),
                 LATERAL (SELECT id FROM series WHERE metric = m.metric AND region = (%(cities)s::int[])[1 + d %% 11]
                          AND operator = (%(ops)s::text[])[1 + d %% 5] AND entity = 'dc' || lpad(d::text, 4, '0')) s
            """,
            {"cities": list(CITIES), "ops": OPERATORS, "start": start, "dcs": dcs, "day": day, "next": nxt},
        )
        n += cur.rowcount
        conn.commit()
        day = nxt
    conn.execute(
        """
        INSERT INTO rollup_dirty (metric, day)
        SELECT m, d::date FROM unnest(ARRAY['dc_energy_total_kwh', 'dc_energy_it_kwh']) m,
               generate_series((%(start)s AT TIME ZONE 'UTC')::date, (%(end)s AT TIME ZONE 'UTC')::date, '1 day') d
        ON CONFLICT DO NOTHING
        """,
        {"start": start, "end": end},
    )
    conn.execute(
        """
        INSERT INTO feed_freshness (operator, metric, region, last_ts, last_received_at)
        SELECT DISTINCT operator, metric, region, %(last)s::timestamptz, now() FROM observation
        WHERE ts = %(last)s
        ON CONFLICT (operator, metric, region) DO UPDATE SET last_ts = EXCLUDED.last_ts
        """,
        {"last": end - timedelta(minutes=5)},
    )
    conn.commit()
    return n


def percentiles(ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


def time_panels(
    conn: psycopg.Connection, start: datetime, end: datetime, runs: int
) -> list[tuple[str, float, float, int]]:
    """Every panel query of every board, expanded as Grafana does (variables at their first option or All)."""
    from dashboards.boards import all_boards
    from dashboards.check import _targets, select_variable
    from dashboards.grafana_sql import TimeRange, expand

    out = []
    for stem, board in all_boards().items():
        variables = {v["name"]: select_variable(conn, v, all_values=True) for v in board["templating"]["list"]}
        time_range = TimeRange(start, end, variables=variables)
        for panel, target in _targets(board):
            sql = expand(target["rawSql"], time_range, timescaledb=False)
            rows = len(conn.execute(sql).fetchall())  # warm-up
            ms = []
            for _ in range(runs):
                t = time.perf_counter()
                conn.execute(sql).fetchall()
                ms.append((time.perf_counter() - t) * 1000)
            conn.rollback()
            p50, p95 = percentiles(ms)
            out.append((f"{stem} / {panel['title']} / {target['refId']}", p50, p95, rows))
    return out


def time_api(url: str, key: str, runs: int, end: datetime) -> list[tuple[str, float, float, int]]:
    day = end.date()
    paths = {
        "GET /v1/series traffic_mobile_gb, province, 1d, 1 year": (
            f"/v1/series?indicator=traffic_mobile_gb&interval=1d&start={day - timedelta(days=365)}T00:00:00"
            f"&end={day}T00:00:00"
        ),
        "GET /v1/series ipv6_share_mobile, province, 1d, 1 year": (
            f"/v1/series?indicator=ipv6_share_mobile&interval=1d&start={day - timedelta(days=365)}T00:00:00"
            f"&end={day}T00:00:00"
        ),
        "GET /v1/series bs5g_total, Nanchang, cmcc, 1mo": (
            f"/v1/series?indicator=bs5g_total&region=360100&operator=cmcc&interval=1mo"
            f"&start={day - timedelta(days=365)}T00:00:00&end={day}T00:00:00"
        ),
        "GET /v1/series dc_pue, province, 1h, 2 days": (
            f"/v1/series?indicator=dc_pue&interval=1h&start={day - timedelta(days=2)}T00:00:00&end={day}T00:00:00"
        ),
        "GET /v1/series dc_pue, province, 1d, 90 days": (
            f"/v1/series?indicator=dc_pue&interval=1d&start={day - timedelta(days=90)}T00:00:00&end={day}T00:00:00"
        ),
        "GET /v1/progress (all active targets)": "/v1/progress",
    }
    return [*_timed(url, key, runs, paths), *_timed_live(url, key, runs, end)]


def _timed_live(url: str, key: str, runs: int, end: datetime) -> list[tuple[str, float, float, int]]:
    """The data-centre series up to now while the newest hour of meter readings waits for the refresh (as
    live meters leave it between two refreshes): rollups up to an hour before it, the rest from readings."""
    until = quote((end + timedelta(hours=1)).isoformat())
    paths = {
        "GET /v1/series dc_pue, province, 1h, last 2 days, newest hour pending": (
            f"/v1/series?indicator=dc_pue&interval=1h&start={quote((end - timedelta(days=2)).isoformat())}&end={until}"
        ),
        "GET /v1/series dc_pue, province, 1d, last 90 days, newest hour pending": (
            f"/v1/series?indicator=dc_pue&interval=1d&start={quote((end - timedelta(days=90)).isoformat())}&end={until}"
        ),
    }
    pending = (
        "INSERT INTO rollup_dirty (metric, day, hour) SELECT m, (%(t)s AT TIME ZONE 'UTC')::date,"
        " extract(hour FROM %(t)s AT TIME ZONE 'UTC') FROM unnest(%(m)s::text[]) m ON CONFLICT DO NOTHING"
    )
    meters = ["dc_energy_total_kwh", "dc_energy_it_kwh"]
    with psycopg.connect(os.environ["INFRAWATCH_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(pending, {"t": end - timedelta(minutes=5), "m": meters})
        try:
            return _timed(url, key, runs, paths)
        finally:
            conn.execute("DELETE FROM rollup_dirty WHERE metric = ANY(%s)", (meters,))


def _timed(url: str, key: str, runs: int, paths: dict[str, str]) -> list[tuple[str, float, float, int]]:
    out = []
    for label, path in paths.items():

        def get(path: str = path) -> bytes:
            req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.read()

        size = len(get())
        ms = []
        for _ in range(runs):
            t = time.perf_counter()
            get()
            ms.append((time.perf_counter() - t) * 1000)
        p50, p95 = percentiles(ms)
        out.append((label, p50, p95, size))
    return out


def kept_database() -> str:
    """The URL of the iw_bench_panels a --keep run left, migrated to the current schema."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from storage import upgrade

    params = conninfo_to_dict(
        os.environ.get("INFRAWATCH_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    params["dbname"] = "iw_bench_panels"
    url = make_conninfo("", **params)
    upgrade(url)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dcs", type=int, default=500, help="data centres with 5-minute meter readings")
    parser.add_argument("--days", type=int, default=90, help="days of meter readings")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each query (after one warm-up)")
    parser.add_argument("--keep", action="store_true", help="keep the database iw_bench_panels afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use the data of a kept iw_bench_panels as it is (migrated and refreshed; no loading)",
    )
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    os.environ["INFRAWATCH_SECRET_KEY"] = SECRET
    import metrics
    from api.keys import create_key

    timings: dict[str, float] = {}
    url = kept_database() if args.reuse else fresh_database("iw_bench_panels")
    os.environ["INFRAWATCH_DATABASE_URL"] = url
    with psycopg.connect(url) as conn:
        if args.reuse:
            row = conn.execute(
                "SELECT max(ts), count(DISTINCT entity), min(ts) FROM observation WHERE entity <> ''"
            ).fetchone()
            assert row is not None and row[0] is not None, "iw_bench_panels holds no meter readings: load it first"
            end, args.dcs = row[0], int(row[1])
            args.days = round((row[0] - row[2]).total_seconds() / 86400)
            daily = int(conn.execute("SELECT count(*) FROM observation WHERE entity = ''").fetchone()[0])
            meters = int(conn.execute("SELECT count(*) FROM observation WHERE entity <> ''").fetchone()[0])
            timings["daily"] = timings["meters"] = float("nan")
        else:
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            days = [end.date() - timedelta(days=k) for k in range(365, 0, -1)]
            t = time.perf_counter()
            daily = load_daily(conn, days)
            timings["daily"] = time.perf_counter() - t
            t = time.perf_counter()
            meters = load_meters(conn, args.dcs, end - timedelta(days=args.days), end)
            timings["meters"] = time.perf_counter() - t
            print(f"loaded {daily:,} daily and {meters:,} meter observations", flush=True)
            conn.commit()
            # what autovacuum does after such a load: statistics, and the time index's block ranges summarized
            # (a range not yet summarized matches every query on ts)
            with psycopg.connect(url, autocommit=True) as maintenance:
                maintenance.execute("VACUUM (ANALYZE)")
        t = time.perf_counter()
        rollups = metrics.refresh_rollups(conn)
        timings["rollups"] = time.perf_counter() - t
        conn.commit()
        with psycopg.connect(url, autocommit=True) as maintenance:  # as the scheduler's rollups job does
            maintenance.execute("ANALYZE indicator_rollup, indicator_pending, series_hour")
        if not args.reuse:
            metrics.load_targets(conn)
        key, _ = create_key(conn, role="viewer", operator=None, name="bench", secret=SECRET)
        conn.commit()
        print(f"rollups: {rollups:,} rows in {timings['rollups']:.0f} s", flush=True)
        panels = time_panels(conn, end - timedelta(days=args.days), end, args.runs)

    port = free_port()
    env = {
        **os.environ,
        "INFRAWATCH_DATABASE_URL": url,
        "INFRAWATCH_SECRET_KEY": SECRET,
        "INFRAWATCH_LOG_LEVEL": "WARNING",
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the server writes to it while it runs
    server = subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "serve", "--no-scheduler", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        try:
            wait_for_port("127.0.0.1", port, 60)
        except TimeoutError:
            log.seek(0)
            raise SystemExit(f"the API server did not start: {log.read().decode()[-2000:]}") from None
        api = time_api(f"http://127.0.0.1:{port}", key, args.runs, end)
    finally:
        server.terminate()
        server.wait(15)
    if not args.keep:
        with psycopg.connect(
            os.environ.get("INFRAWATCH_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres"), autocommit=True
        ) as c:
            c.execute('DROP DATABASE IF EXISTS "iw_bench_panels" WITH (FORCE)')

    over = [(n, p95) for n, _, p95, _ in panels + api if p95 >= 150]
    lines = ["| query | p50 ms | p95 ms | rows / bytes |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {n} | {p50:.1f} | {p95:.1f} | {rows:,} |" for n, p50, p95, rows in panels + api]
    loaded = (
        "loaded by an earlier `--keep` run"
        if args.reuse
        else f"{timings['daily']:.0f} s and {timings['meters']:.0f} s to load"
    )
    body = (
        f"Data: {daily:,} daily observations (365 days × 11 cities × 5 operators × 3 metrics, through the pipeline) "
        f"and {meters:,} meter readings ({args.dcs} data centres × 2 meters × {args.days} days at 5 minutes, "
        f"generated in the server); {loaded}; `refresh_rollups` {rollups:,} rows in {timings['rollups']:.0f} s. "
        "Panels: every board's queries expanded for the last "
        f"{args.days} days, variables at their first option (All where offered), {args.runs} timed runs after a "
        "warm-up, in-process. API: a live `infrawatch serve --no-scheduler` on loopback, viewer key, "
        f"{args.runs} requests each.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + (
            f"**{len(over)} queries have p95 ≥ 150 ms**: " + "; ".join(f"{n} ({p:.0f} ms)" for n, p in over)
            if over
            else "Every panel and API query has p95 under 150 ms."
        )
        + "\n"
    )
    print(body)
    if not args.no_record:
        append_section(
            "Panel and API query latency",
            f"uv run python bench/bench_panels.py --dcs {args.dcs} "
            f"--days {args.days} --runs {args.runs}" + (" --reuse" if args.reuse else ""),
            body,
        )


if __name__ == "__main__":
    main()
