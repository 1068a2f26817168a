"""CSV ingest, side by side: `infrawatch load-csv` against `psql \\copy` of the same file into a bare table
(the ceiling) and into tables keyed by the full identity, in one run; rows per second, ratio, peak memory, and
the bytes each observation takes once loaded (observation_point's partitions with their primary key, and the
series). Appends to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import append_section, fresh_database, postgres_cpu_seconds, run_measured
from csvgen import write_csv

COLUMNS = (
    'ts timestamptz, region integer, operator text COLLATE "C", entity text COLLATE "C", '
    'metric text COLLATE "C", value double precision'
)
BARE = f"CREATE TABLE bare ({COLUMNS})"
# What a table keyed by the full identity costs a plain COPY: its primary key, then also monthly partitions
# and a BRIN index (the observation table before migration 0160). Shown beside the ceiling, which the issue
# defines as the bare table; load-csv writes (series_id, ts) rows instead (migration 0160).
KEYED = f"CREATE TABLE bare ({COLUMNS}, PRIMARY KEY (metric, region, operator, entity, ts))"
KEYED_PARTITIONED = (
    f"CREATE TABLE bare ({COLUMNS}, PRIMARY KEY (metric, region, operator, entity, ts)) PARTITION BY RANGE (ts);"
    " CREATE TABLE bare_2022_12 PARTITION OF bare FOR VALUES FROM ('2022-12-01Z') TO ('2023-01-01Z');"
    " CREATE TABLE bare_2023_01 PARTITION OF bare FOR VALUES FROM ('2023-01-01Z') TO ('2023-02-01Z');"
    " CREATE TABLE bare_default PARTITION OF bare DEFAULT; CREATE INDEX ON bare USING brin (ts)"
)
CEILINGS = [
    ("psql \\copy into a bare table (ceiling)", BARE),
    ("psql \\copy into a table keyed by the full identity", KEYED),
    (
        "psql \\copy into a table shaped like observation before 0160 (identity key, monthly partitions, BRIN)",
        KEYED_PARTITIONED,
    ),
]


def observation_bytes(url: str) -> tuple[int, int]:
    """Bytes on disk of the stored observations (observation_point's partitions with their indexes, and the
    series table) and how many observations they hold."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i"
            "        WHERE i.inhparent = 'observation_point'::regclass) + pg_total_relation_size('series'),"
            " (SELECT count(*) FROM observation_point)"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def timescale_bytes(server: str, path: Path) -> tuple[int, int, int]:
    """The file loaded by load-csv into a fresh database on a TimescaleDB server, then every chunk compressed:
    bytes of the observations (observation_point's chunks with their indexes, and the series) before and
    after compression, and how many observations they hold."""
    url = fresh_database("iw_bench_csv_ts", server=server)
    env = {**os.environ, "INFRAWATCH_DATABASE_URL": url, "INFRAWATCH_LOG_JSON": "true"}
    run_measured([sys.executable, "-m", "infrawatch", "load-csv", str(path)], env)
    size = "SELECT hypertable_size('observation_point') + pg_total_relation_size('series')"
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute(size).fetchone()
        conn.execute("SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('observation_point') c")
        conn.execute("VACUUM ANALYZE")
        after = conn.execute(size).fetchone()
        count = conn.execute("SELECT count(*) FROM observation_point").fetchone()
    return int(before[0]) if before else 0, int(after[0]) if after else 0, int(count[0]) if count else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternating; the best is kept")
    parser.add_argument("--label", default="", help="appended to the section title, e.g. before/after")
    parser.add_argument(
        "--timescale",
        default="",
        metavar="URL",
        help="also load the file into a server with TimescaleDB preloaded and measure it compressed",
    )
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to docs/benchmarks.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "observations.csv"
        write_csv(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        ours: list[dict[str, float]] = []
        ceilings: list[list[dict[str, float]]] = [[] for _ in CEILINGS]
        index_bytes = keyed_bytes = 0
        stored_bytes = stored_rows = 0
        psql = shutil.which("psql") or "psql"
        for _ in range(args.repeat):
            url = fresh_database("iw_bench_csv")
            env = {**os.environ, "INFRAWATCH_DATABASE_URL": url, "INFRAWATCH_LOG_JSON": "true"}
            pg0 = postgres_cpu_seconds()
            ours.append(run_measured([sys.executable, "-m", "infrawatch", "load-csv", str(path)], env))
            time.sleep(0.5)  # the postmaster reaps the exited backend (and adds its CPU) asynchronously
            ours[-1]["pg_cpu_s"] = postgres_cpu_seconds() - pg0
            stored_bytes, stored_rows = observation_bytes(url)
            for runs, (_, ddl) in zip(ceilings, CEILINGS, strict=True):
                bare_url = fresh_database("iw_bench_csv_bare", migrate=False)
                run_measured([psql, bare_url, "-qc", ddl])
                pg0 = postgres_cpu_seconds()
                runs.append(
                    run_measured([psql, bare_url, "-qc", f"\\copy bare FROM '{path}' WITH (FORMAT csv, HEADER)"])
                )
                time.sleep(0.5)
                runs[-1]["pg_cpu_s"] = postgres_cpu_seconds() - pg0
                if ddl == KEYED:
                    with psycopg.connect(bare_url) as conn:
                        row = conn.execute(
                            "SELECT pg_relation_size('bare_pkey'), pg_total_relation_size('bare')"
                        ).fetchone()
                    index_bytes, keyed_bytes = (int(row[0]), int(row[1])) if row else (0, 0)
        compressed = timescale_bytes(args.timescale, path) if args.timescale else None
    best = min(ours, key=lambda r: r["wall_s"])
    tops = [min(runs, key=lambda r: r["wall_s"]) for runs in ceilings]
    rate, top_rate = args.rows / best["wall_s"], args.rows / tops[0]["wall_s"]
    keyed_rate = args.rows / tops[1]["wall_s"]
    rows = "".join(
        f"| {name} | {top['wall_s']:.1f} | {args.rows / top['wall_s']:,.0f} | {top['cpu_s']:.1f} | "
        f"{top['pg_cpu_s']:.1f} | {top['peak_mb']:.0f} | {rate * top['wall_s'] / args.rows:.0%} |\n"
        for (name, _), top in zip(CEILINGS, tops, strict=True)
    )
    body = (
        f"{args.rows:,} rows ({size_mb:.0f} MB, long format, 500 data-centre meters at 5-minute steps); "
        f"best of {args.repeat} alternating runs each.\n\n"
        "| loader | wall s | rows/s | CPU s (client) | CPU s (PostgreSQL) | peak RSS MB | load-csv's share |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        f"| infrawatch load-csv (validate, COPY, merge where identities exist, history, quarantine) | {best['wall_s']:.1f} | "
        f"{rate:,.0f} | {best['cpu_s']:.1f} | {best['pg_cpu_s']:.1f} | {best['peak_mb']:.0f} | |\n"
        f"{rows}\n"
        f"Ratio: load-csv reaches **{rate / top_rate:.0%}** of the ceiling (the bare table) and **{rate / keyed_rate:.0%}** "
        f"of a `\\copy` into a table keyed by the full identity.\n\n"
        f"Stored: **{stored_bytes / max(stored_rows, 1):.1f} bytes per observation** after load-csv ({stored_rows:,} "
        f"observations; observation_point's partitions with their primary key (series_id, ts), and the series: "
        f"{stored_bytes / 1e6:,.0f} MB). The table keyed by the full identity takes {keyed_bytes / args.rows:.0f} bytes "
        f"per row, its primary key alone {index_bytes / args.rows:.0f} ({index_bytes / 1e6:,.0f} MB).\n"
    )
    if compressed:
        before, after, count = compressed
        body += (
            f"\nOn TimescaleDB (the same file loaded by load-csv, then every chunk compressed, segmented by series): "
            f"**{after / max(count, 1):.1f} bytes per observation** ({count:,} observations: the hypertable's chunks "
            f"with their indexes, and the series: {after / 1e6:,.1f} MB), against {before / max(count, 1):.1f} "
            "before compression.\n"
        )
    print(body)
    if not args.no_record:
        append_section(
            "CSV ingest: load-csv vs psql \\copy" + (f" ({args.label})" if args.label else ""),
            f"uv run python bench/bench_csv.py --rows {args.rows}"
            + (" --timescale postgresql://postgres@127.0.0.1:5433/postgres" if args.timescale else ""),
            body,
        )


if __name__ == "__main__":
    main()
