"""MQTT → database end to end, side by side in one run (issue 10): observations per second stored by
`infrawatch ingest mqtt` (QoS 1, acknowledgement after commit) for 1 and 100 observations per message,
against (a) a naive consumer (one INSERT per observation through the `observation` view, a commit per
message), (b) a competent peer: a Node-RED flow (mqtt in → join of 2,000 rows → a pg Pool running one
statement per joined batch: the batch's new identities into `series`, then INSERT INTO observation_point …
SELECT FROM unnest(…) JOIN series ON CONFLICT DO NOTHING; it acknowledges before it writes and validates
nothing), installed from npm into bench/nodered/node_modules on first use, and (c) the ceiling: the same rows
COPYed into the same table with the same indexes, no MQTT. Also publish-to-commit latency (p50, p99)
and the CPU seconds of each process. Messages are pre-generated and replayed by several `mosquitto_pub -l`
processes so the publisher is not the bottleneck. Appends to docs/benchmarks.md.

    uv run python bench/bench_mqtt.py [--single 100000] [--batched 1000000] [--naive 20000]

Tuning and profiling (printed, not recorded): `--phases single,batched` runs a subset, `--consumer-args
"--batch-size 20000"` passes options to the consumer, `--profile DIR` attaches py-spy to it (collapsed stacks
in DIR/mqtt-N.txt; waits included, or only the thread holding the GIL with BENCH_PROFILE_MODE=gil), and
BENCH_CONSUMER_LOG=FILE with BENCH_CONSUMER_LOG_LEVEL=DEBUG keeps its log (one line per stored batch).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import append_section, cpu_seconds, fresh_database, postgres_cpu_seconds

from core.embedded import free_port, start_broker

CITIES = [360100, 360200, 360300, 360400, 360500, 360600, 360700, 360800, 360900, 361000, 361100]
TOPIC = "infra/v1/cmcc/dc_energy_total_kwh"
START = datetime(2023, 1, 1, tzinfo=UTC)
ENTITIES = 2000  # data-centre meters of the `load` scenario's size


def observations(n: int) -> list[dict[str, object]]:
    """n cumulative meter readings: ENTITIES meters at 5-minute steps."""
    out = []
    for i in range(n):
        step, e = divmod(i, ENTITIES)
        ts = (START + timedelta(minutes=5 * step)).isoformat()
        out.append({"ts": ts, "region": str(CITIES[e % 11]), "value": 1000 + 37 * step + e, "entity": f"dc{e:05d}"})
    return out


def message_files(obs: list[dict[str, object]], per_message: int, publishers: int, folder: Path) -> list[Path]:
    lines = []
    for i in range(0, len(obs), per_message):
        part = obs[i : i + per_message]
        lines.append(json.dumps(part[0] if per_message == 1 else part, separators=(",", ":")))
    files = []
    for p in range(publishers):
        path = folder / f"pub{per_message}-{p}.txt"
        path.write_text("\n".join(lines[p::publishers]) + "\n")
        files.append(path)
    return files


def stored(url: str) -> int:
    """Observations stored, the latency probe's aside (every generated identity is distinct): the points
    themselves, not the `observation` view (joining the series makes a poll twice as long at 1M rows)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM observation_point"
            " WHERE series_id NOT IN (SELECT id FROM series WHERE entity = 'probe')"
        ).fetchone()
    return int(row[0]) if row else 0


class Probe:
    """Publishes one observation every 20 ms with ts = now, to measure publish-to-commit latency."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-probe", protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            now = datetime.now(UTC)
            item = {"ts": now.isoformat(), "region": "360100", "value": i, "entity": "probe"}
            self.client.publish("infra/v1/cmcc/dc_energy_it_kwh", json.dumps(item), qos=1)
            i += 1
            time.sleep(0.02)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.client.loop_stop()
        self.client.disconnect()


def latencies_ms(url: str) -> tuple[float, float]:
    """Publish-to-commit latency of the probe's observations: received_at (the storing transaction's
    start, a few ms before its commit) minus ts (the publish instant)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM received_at - ts) * 1000 FROM observation "
            "WHERE entity = 'probe' AND received_at IS NOT NULL ORDER BY ts"
        ).fetchall()
    values = sorted(float(r[0]) for r in rows)
    if len(values) < 10:
        return float("nan"), float("nan")
    return statistics.median(values), values[int(len(values) * 0.99) - 1]


def run_consumer(
    kind: str,
    per_message: int,
    n: int,
    workdir: Path,
    publishers: int,
    profile: Path | None = None,
    consumer_args: list[str] | None = None,
) -> dict[str, float]:
    url = fresh_database(f"iw_bench_mqtt_{kind}")
    broker, port = start_broker(workdir / f"broker-{kind}-{per_message}")
    env = {
        **os.environ,
        "INFRAWATCH_DATABASE_URL": url,
        "INFRAWATCH_MQTT_URL": f"mqtt://127.0.0.1:{port}",
        "INFRAWATCH_LOG_LEVEL": os.environ.get("BENCH_CONSUMER_LOG_LEVEL", "WARNING"),
    }
    if kind == "nodered":
        consumer = start_nodered(workdir / f"nodered-{per_message}", url, port)
    elif kind == "infrawatch":
        consumer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "collectors.mqtt",
                "ingest",
                "mqtt",
                "--client-id",
                "bench-ingest",
                *(consumer_args or []),
            ],
            env=env,
            stderr=open(os.environ["BENCH_CONSUMER_LOG"], "ab")  # noqa: SIM115
            if os.environ.get("BENCH_CONSUMER_LOG")
            else subprocess.DEVNULL,
        )
    else:
        consumer = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "naive_consumer.py"), url, "127.0.0.1", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
    time.sleep(4)  # subscribed
    spy = None
    if profile is not None and kind == "infrawatch":  # py-spy samples every thread, as collapsed stacks
        mode = "--gil" if os.environ.get("BENCH_PROFILE_MODE") == "gil" else "--idle"  # CPU, or also the waits
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--threads",
                mode,
                "--rate",
                "200",
                "--format",
                "raw",
                "-o",
                str(profile / f"mqtt-{per_message}.txt"),
                "--pid",
                str(consumer.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    files = message_files(observations(n), per_message, publishers, workdir)
    pub = shutil.which("mosquitto_pub") or "mosquitto_pub"
    cpu0 = cpu_seconds(consumer.pid), cpu_seconds(broker.pid), postgres_cpu_seconds()
    started = time.perf_counter()
    with Probe(port):
        procs = [
            subprocess.Popen(
                [pub, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M", "1000", "-t", TOPIC, "-l"],
                stdin=open(f, "rb"),  # noqa: SIM115  (the publisher reads it until it exits)
            )
            for f in files
        ]
        pub_cpu = 0.0
        for proc in procs:
            _, _, usage = os.wait4(proc.pid, 0)
            pub_cpu += usage.ru_utime + usage.ru_stime
        published_s = time.perf_counter() - started
        stored_then = stored(url)
        deadline = time.perf_counter() + 600
        while (done := stored(url)) < n and time.perf_counter() < deadline:
            time.sleep(0.1)
    elapsed = time.perf_counter() - started
    result = {
        "observations": done,
        "seconds": elapsed,
        "rate": done / elapsed,
        "consumer_cpu": cpu_seconds(consumer.pid) - cpu0[0],
        "broker_cpu": cpu_seconds(broker.pid) - cpu0[1],
        "published_s": published_s,
        "stored_when_published": stored_then,
        "publisher_cpu": pub_cpu,
        "postgres_cpu": postgres_cpu_seconds() - cpu0[2],
    }
    result["p50_ms"], result["p99_ms"] = latencies_ms(url)
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        spy.wait(60)
    consumer.terminate()
    try:
        consumer.wait(30)
    except subprocess.TimeoutExpired:  # the naive consumer sometimes ignores SIGTERM inside paho's loop
        consumer.kill()
        consumer.wait(10)
    broker.terminate()
    broker.wait(10)
    return result


NODERED = Path(__file__).resolve().parent / "nodered"


def start_nodered(userdir: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    """The Node-RED peer on this run's broker and database (npm-installed into bench/nodered on first use)."""
    red = NODERED / "node_modules" / "node-red" / "red.js"
    if not red.exists():
        print("installing Node-RED and pg from npm into bench/nodered (once) …", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--omit=dev", "--prefix", str(NODERED)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    userdir.mkdir(parents=True, exist_ok=True)
    for name in ("settings.js", "flows.json"):
        shutil.copy(NODERED / name, userdir / name)
    with psycopg.connect(url) as conn:  # the same monthly partitions infrawatch would make before writing
        conn.execute("SELECT iw_ensure_partitions(%s, %s)", (START, START + timedelta(days=400)))
        conn.commit()
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    pg_url = (
        f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', 5432)}/{params['dbname']}"
    )
    env = {
        **os.environ,
        "NODE_PATH": str(NODERED / "node_modules"),
        "NODERED_DATABASE_URL": pg_url,
        "NODERED_MQTT_PORT": str(port),
        "NODERED_PORT": str(free_port()),
    }
    return subprocess.Popen(
        ["node", str(red), "--userDir", str(userdir), "--settings", str(userdir / "settings.js")],
        env=env,
        stdout=open(userdir / "node-red.log", "ab"),
        stderr=subprocess.STDOUT,
    )


def run_ceiling(n: int) -> dict[str, float]:
    """The same rows COPYed straight into `observation_point` (same table, same indexes), no MQTT: the meters'
    series are made first, as the pipeline's series-id cache would know them."""
    url = fresh_database("iw_bench_mqtt_copy")
    rows = observations(n)
    with psycopg.connect(url) as conn:
        conn.execute("SELECT iw_ensure_partitions(%s, %s)", (START, START + timedelta(days=400)))
        meters = sorted({(int(str(r["region"])), str(r["entity"])) for r in rows})
        conn.execute(
            "INSERT INTO series (metric, region, operator, entity)"
            " SELECT 'dc_energy_total_kwh', r, 'cmcc', e FROM unnest(%s::int[], %s::text[]) AS m(r, e)",
            ([r for r, _ in meters], [e for _, e in meters]),
        )
        ids = {e: i for i, e in conn.execute("SELECT id, entity FROM series")}
        conn.commit()
        buf = io.StringIO()
        for r in rows:
            buf.write(f"{ids[r['entity']]}\t{r['ts']}\t{r['value']}\t0\n")
        data = buf.getvalue().encode()
        pg0 = postgres_cpu_seconds()
        started = time.perf_counter()
        with conn.cursor().copy("COPY observation_point (series_id, ts, value, batch_id) FROM STDIN") as copy:
            copy.write(data)
        conn.commit()
        elapsed = time.perf_counter() - started
    return {"observations": n, "seconds": elapsed, "rate": n / elapsed, "postgres_cpu": postgres_cpu_seconds() - pg0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=100_000, help="observations sent one per message")
    parser.add_argument("--batched", type=int, default=1_000_000, help="observations sent 100 per message")
    parser.add_argument("--naive", type=int, default=20_000, help="single-observation messages for the naive one")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--label", default="", help="appended to the section title, e.g. before/after")
    parser.add_argument(
        "--phases",
        default="single,naive,nodered1,batched,nodered100,ceiling",
        help="comma-separated subset of single,naive,nodered1,batched,nodered100,ceiling (a subset is not recorded)",
    )
    parser.add_argument("--consumer-args", default="", help="extra options for `infrawatch ingest mqtt` (tuning)")
    parser.add_argument("--profile", type=Path, help="folder for py-spy flame graphs of the infrawatch consumer")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    phases = args.phases.split(",")
    extra = args.consumer_args.split()
    runs = {
        "single": (
            "infrawatch, 1 obs/message",
            lambda w: run_consumer("infrawatch", 1, args.single, w, args.publishers, args.profile, extra),
        ),
        "naive": ("naive consumer, 1 obs/message", lambda w: run_consumer("naive", 1, args.naive, w, args.publishers)),
        "nodered1": (
            "Node-RED flow, 1 obs/message",
            lambda w: run_consumer("nodered", 1, args.single, w, args.publishers),
        ),
        "batched": (
            "infrawatch, 100 obs/message",
            lambda w: run_consumer("infrawatch", 100, args.batched, w, args.publishers, args.profile, extra),
        ),
        "nodered100": (
            "Node-RED flow, 100 obs/message",
            lambda w: run_consumer("nodered", 100, args.batched, w, args.publishers),
        ),
        "ceiling": ("COPY ceiling (same table and indexes, no MQTT)", lambda w: run_ceiling(args.batched)),
    }
    results: dict[str, tuple[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for phase in phases:
            name, run = runs[phase]
            print(f"{phase}: {name} …", flush=True)
            results[phase] = (name, run(Path(tmp)))
    lines = [
        "| path | observations | s | obs/s | published after s (stored by then) | p50 ms | p99 ms | consumer CPU s "
        "| broker CPU s | publishers CPU s | PostgreSQL CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.values():
        published = f"{r['published_s']:.1f} ({r['stored_when_published']:,.0f})" if "published_s" in r else ""
        lines.append(
            f"| {name} | {r['observations']:,.0f} | {r['seconds']:.1f} | {r['rate']:,.0f} | {published} | "
            f"{r.get('p50_ms', float('nan')):.0f} | {r.get('p99_ms', float('nan')):.0f} | "
            f"{r.get('consumer_cpu', float('nan')):.1f} | {r.get('broker_cpu', float('nan')):.1f} | "
            f"{r.get('publisher_cpu', float('nan')):.1f} | {r.get('postgres_cpu', float('nan')):.1f} |"
        )
    if set(results) != set(runs):  # a subset: printed, not recorded
        print("\n".join(lines))
        return
    rate = {k: r["rate"] for k, (_, r) in results.items()}
    body = "\n".join(lines) + (
        f"\n\nRatios: single-observation messages {rate['single'] / rate['naive']:.1f}× the naive consumer and "
        f"{rate['single'] / rate['nodered1']:.2f}× the Node-RED flow; 100-observation messages "
        f"{rate['batched'] / rate['nodered100']:.2f}× the Node-RED flow and {rate['batched'] / rate['ceiling']:.0%} "
        "of the COPY ceiling.\n"
        "Latency is publish (the probe's ts) to the start of the storing transaction, measured on a probe "
        "publishing every 20 ms during the load.\n"
    )
    print(body)
    if not args.no_record:
        append_section(
            "MQTT → database, end to end" + (f" ({args.label})" if args.label else ""),
            f"uv run python bench/bench_mqtt.py --single {args.single} --batched {args.batched} --naive {args.naive}",
            body,
        )


if __name__ == "__main__":
    main()
