"""Benchmark: MQTT messages per second from the simulator to a private local Mosquitto.

Generates the `load` scenario (data-centre and base-station meters), turns it into single-object
QoS 1 messages (one observation each), and times publishing them until the broker has acknowledged
every one (PUBACK), over one connection per operator.

    uv run python bench/bench_simulator_mqtt.py [--minutes 150] [--connections 1] [--batch 1]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from core.embedded import start_broker
from simulators.faults import FaultInjector
from simulators.generate import Window, generate
from simulators.scenario import load_scenario
from simulators.sinks.mqtt import MqttSink, messages
from simulators.timeline import US, parse_instant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=int, default=150, help="minutes of the load scenario to send")
    ap.add_argument("--connections", type=int, default=1, help="connections per operator")
    ap.add_argument("--batch", type=int, default=1, help="observations per message (1 = single objects)")
    ap.add_argument("--window", type=int, default=5000, help="unacknowledged messages per connection")
    args = ap.parse_args()

    scenario = load_scenario("load")
    start = parse_instant(scenario.start, scenario.zone)
    t = time.perf_counter()
    truth = generate(scenario, Window(start, start + args.minutes * 60 * US - 1))
    outbox = FaultInjector(scenario).outbox(truth)
    msgs = list(messages(outbox, args.batch))
    prep = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_broker(Path(tmp) / "broker")
        try:
            sink = MqttSink(
                f"mqtt://127.0.0.1:{port}",
                batch=args.batch,
                connections_per_operator=args.connections,
                window=args.window,
            )
            for op in sorted({m[0] for m in msgs}):  # connect before the clock starts
                sink.connect(op)
            t = time.perf_counter()
            for op, topic, payload, count in msgs:
                sink.publish(op, topic, payload, count)
            sink.flush()
            elapsed = time.perf_counter() - t
            report = sink.close()
        finally:
            proc.terminate()
            proc.wait(10)
    rate = report.messages / elapsed
    print(
        f"date: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''} python {platform.python_version()}\n"
        f"prepared {len(truth):,} observations into {len(msgs):,} messages in {prep:.1f}s\n"
        f"published {report.messages:,} messages ({report.observations:,} observations) QoS 1 over "
        f"{len({m[0] for m in msgs}) * args.connections} connections in {elapsed:.2f}s "
        f"(all acknowledged): {rate:,.0f} messages/s, {report.observations / elapsed:,.0f} observations/s"
    )


if __name__ == "__main__":
    main()
