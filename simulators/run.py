"""Driving a simulation through time: backfill a range window by window as fast as the sink takes
it, then (optionally) keep going live in real time. The only module that reads the clock."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from simulators.faults import FaultInjector, cadence_of_metrics, empty_outbox, sort_outbox
from simulators.generate import Window, generate
from simulators.scenario import Scenario
from simulators.sinks import Sink, SinkReport
from simulators.timeline import DAY_US, US

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    scenario: str
    seed: int
    start_us: int
    end_us: int
    observations: int = 0  # true observations generated
    emitted: int = 0  # outbox rows handed to the sink
    faults: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    sink: SinkReport | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "observations": self.observations,
            "emitted": self.emitted,
            "faults": dict(sorted(self.faults.items())),
            "elapsed_s": round(self.elapsed_s, 3),
            "sink": self.sink.__dict__ if self.sink else None,
        }


def chunk_us(scenario: Scenario) -> int:
    """Backfill window length: a day when meters report every few minutes, else a week."""
    fastest = min(cadence_of_metrics(scenario).values(), default=86400)
    return DAY_US if fastest < 3600 else 7 * DAY_US


class Simulation:
    """Generates windows, injects faults, holds back rows due later, and hands the rest to the sink."""

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        self.scenario = scenario
        self.sink = sink
        self.injector = FaultInjector(scenario)
        self.pending = empty_outbox()
        self.report = RunReport(scenario.name, scenario.seed, 0, 0)

    def step(self, window: Window, send_until_us: int) -> int:
        """Generate report times in the window; send every row due by send_until_us. Returns rows sent."""
        truth = generate(self.scenario, window)
        self.report.observations += len(truth)
        out = self.injector.outbox(truth)
        both = out if self.pending.empty else sort_outbox(pd.concat([self.pending, out], ignore_index=True))
        due = both["send_us"].to_numpy() <= send_until_us
        ready, self.pending = both[due], both[~due].reset_index(drop=True)
        return self._send(ready)

    def flush(self) -> int:
        """Send everything still held back (rows due after the range end: late and out-of-order ones)."""
        ready, self.pending = self.pending, empty_outbox()
        return self._send(ready)

    def _send(self, ready: pd.DataFrame) -> int:
        if ready.empty:
            return 0
        self.sink.send(ready.reset_index(drop=True))
        self.report.emitted += len(ready)
        return len(ready)


def backfill(scenario: Scenario, sink: Sink, start_us: int, end_us: int, *, flush: bool = True) -> RunReport:
    """Every report time in [start_us, end_us], as fast as the sink takes it."""
    sim = Simulation(scenario, sink)
    _backfill(sim, start_us, end_us)
    if flush:
        sim.flush()
    return _finish(sim, start_us, end_us)


def _backfill(sim: Simulation, start_us: int, end_us: int) -> None:
    t0 = time.monotonic()
    step = chunk_us(sim.scenario)
    a = start_us
    while a <= end_us:
        b = min(a + step - 1, end_us)
        sim.step(Window(a, b), b)
        log.debug("window sent", extra={"event": "simulate.window", "start_us": a, "end_us": b})
        a = b + 1
    sim.report.elapsed_s += time.monotonic() - t0


def live(
    scenario: Scenario,
    sink: Sink,
    start_us: int | None,
    *,
    until_us: int | None = None,
    tick_s: float = 1.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """Backfill from start_us to now (if given), then follow the clock: each report is sent when its
    time comes (late and out-of-order ones when theirs does), until until_us or an interrupt."""
    sim = Simulation(scenario, sink)
    t0 = time.monotonic()
    now = int(clock() * US)
    first = start_us if start_us is not None else now
    if start_us is not None and start_us <= now:
        _backfill(sim, start_us, now)
    last = max(now, first - 1)
    try:
        while until_us is None or last < until_us:
            sleep(tick_s)
            idle = getattr(sink, "idle", None)
            if idle:
                idle()
            now = int(clock() * US)
            end = now if until_us is None else min(now, until_us)
            if end > last:
                sim.step(Window(last + 1, end), now)
                last = end
    except KeyboardInterrupt:
        log.info("live simulation interrupted", extra={"event": "simulate.interrupted"})
    sim.report.elapsed_s = time.monotonic() - t0
    return _finish(sim, first, last)


def _finish(sim: Simulation, start_us: int, end_us: int) -> RunReport:
    sim.report.faults = Counter(sim.injector.counts)
    sim.report.sink = sim.sink.close()
    sim.report.start_us, sim.report.end_us = start_us, end_us
    log.info(
        "simulation done",
        extra={
            "event": "simulate.done",
            "scenario": sim.scenario.name,
            "observations": sim.report.observations,
            "emitted": sim.report.emitted,
        },
    )
    return sim.report
