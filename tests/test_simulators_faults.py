"""Faults on the wire: each kind appears at its configured rate; the same seed gives the same bytes."""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.timestamps import TimestampError, parse_rfc3339
from simulators.faults import FaultInjector, sort_outbox
from simulators.generate import Window, generate, scenario_window
from simulators.run import Simulation, backfill
from simulators.scenario import load_scenario
from simulators.sinks.csvfile import CsvSink
from simulators.sinks.mqtt import messages
from simulators.timeline import DAY_US, US

COUNTERS = ("dc_energy_total_kwh", "dc_energy_it_kwh")


class ListSink:
    """Collects what a simulation hands over (a sink with no I/O, for looking at the outbox)."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def send(self, out: pd.DataFrame) -> None:
        self.frames.append(out)

    def close(self):
        from simulators.sinks import SinkReport

        return SinkReport("list")


@lru_cache(maxsize=1)
def faults_run() -> tuple[pd.DataFrame, list[dict], pd.DataFrame]:
    """(truth, every decoded item sent over MQTT with its topic operator, outbox) of the faults scenario."""
    sc = load_scenario("faults")
    w = scenario_window(sc)
    truth = generate(sc, w)
    sink = ListSink()
    backfill(sc, sink, w.start_us, w.end_us)
    outbox = pd.concat(sink.frames, ignore_index=True)
    items: list[dict] = []
    for operator, topic, payload, _ in messages(outbox, batch=100):
        try:
            decoded = json.loads(payload)
        except json.JSONDecodeError:
            items.append({"_not_json": payload.decode(), "_sender": operator, "_metric": topic.rsplit("/", 1)[1]})
            continue
        for item in decoded if isinstance(decoded, list) else [decoded]:
            items.append({**item, "_sender": operator, "_metric": topic.rsplit("/", 1)[1]})
    return truth, items, outbox


def within_rate(count: int, n: int, rate: float) -> bool:
    """Binomial count within 4 standard deviations (plus one) of n × rate."""
    return abs(count - n * rate) <= 4 * math.sqrt(n * rate * (1 - rate)) + 1


def _valid(item: dict) -> bool:
    if "_not_json" in item:
        return False
    try:
        ts = parse_rfc3339(item["ts"])
    except (TimestampError, KeyError):
        return False
    v = item.get("value")
    return (
        isinstance(v, int | float)
        and v >= 0
        and item.get("region") != "369999"
        and ts < parse_rfc3339("2030-01-01T00:00:00+08:00")
        and item.get("operator", item["_sender"]) == item["_sender"]
    )


def _identity(item: dict) -> tuple:
    return (item["_metric"], item["region"], item["_sender"], item.get("entity", ""), item["ts"])


def test_each_fault_kind_appears_at_its_configured_rate_on_the_wire() -> None:
    truth, items, _ = faults_run()
    rates = load_scenario("faults").faults
    n = len(truth)
    sent = [i for i in items if _valid(i)]
    seen: dict[tuple, list[float]] = {}
    for i in sent:
        seen.setdefault(_identity(i), []).append(i["value"])
    # malformed: not JSON, a value that is no number or negative, an unknown region, an impossible ts
    malformed = sum(
        1
        for i in items
        if "_not_json" in i
        or not isinstance(i.get("value"), int | float)
        or i["value"] < 0
        or i.get("region") == "369999"
        or "02-30T25" in str(i.get("ts"))
    )
    future = sum(1 for i in items if "_not_json" not in i and i["ts"] > "2030")
    foreign = sum(1 for i in items if "operator" in i and i["operator"] != i["_sender"])
    duplicates = sum(1 for values in seen.values() if len(values) == 2 and values[0] == values[1])
    revisions = sum(1 for values in seen.values() if len(values) == 2 and values[0] != values[1])
    # a gap is a true observation that never arrives in any form
    truth_ids = set(
        zip(
            truth["metric"],
            truth["region"].astype(str),
            truth["operator"],
            truth["entity"],
            truth["ts_us"],
            strict=True,
        )
    )
    arrived = {(i["_metric"], i["region"], i["_sender"], i.get("entity", ""), parse_rfc3339(i["ts"])) for i in sent}
    not_valid_ids = n - len(arrived & truth_ids)
    gaps = not_valid_ids - malformed - future - foreign
    assert within_rate(malformed, n, rates.malformed), malformed
    assert within_rate(future, n, rates.future_ts), future
    assert within_rate(foreign, n, rates.foreign_operator), foreign
    assert within_rate(duplicates, n, rates.duplicate), duplicates
    assert within_rate(revisions, n, rates.revision), revisions
    assert within_rate(gaps, n, rates.gap), gaps
    # on the wire each fault is visible: none of these counts is zero (rates of 0.5–2 % of ~32,000)
    assert min(malformed, future, foreign, duplicates, revisions, gaps) > 50


def test_out_of_order_and_late_observations_arrive_after_later_reports_of_their_series() -> None:
    truth, _, outbox = faults_run()
    rates = load_scenario("faults").faults
    first = outbox[outbox["copy"] == 0]
    delay = (first["send_us"] - first["ts_us"]).to_numpy()
    n = len(truth)
    # late ones wait an hour to three days; out-of-order ones 1.2–3.2 reports (here ≥ 1.2 h) — nothing else waits
    waited = int((delay >= 3600 * US).sum())
    assert within_rate(waited, n, rates.late + rates.out_of_order), waited
    # out of order: sent after a later report of the same series
    overtaken = 0
    for _, s in first.groupby(["metric", "region", "operator", "entity"]):
        ts_in_send_order = s["ts_us"].to_numpy()
        overtaken += int((ts_in_send_order < np.maximum.accumulate(ts_in_send_order)).sum())
    assert within_rate(overtaken, n, rates.out_of_order + rates.late), overtaken
    assert overtaken > 100


def test_meter_counters_reset_at_their_rate_and_keep_their_increases() -> None:
    truth, _, outbox = faults_run()
    rates = load_scenario("faults").faults
    readings = truth[truth["metric"].isin(COUNTERS)]
    sent = outbox[outbox["metric"].isin(COUNTERS) & (outbox["copy"] == 0) & (outbox["fault"] == "counter_reset")]
    assert within_rate(len(sent), len(readings), rates.counter_reset)
    # one meter: after a reset the reading is the energy since the reset (Prometheus increase() semantics)
    row = sent.iloc[0]
    series = truth[(truth["metric"] == row["metric"]) & (truth["entity"] == row["entity"])].set_index("ts_us")["value"]
    before = series[series.index < row["ts_us"]].iloc[-1]
    assert float(row["value"]) == pytest.approx(series[row["ts_us"]] - before, abs=0.01)


def test_the_same_seed_gives_the_same_bytes_in_every_format(tmp_path: Path) -> None:
    sc = load_scenario("faults", {"end": "2023-06-10"})
    w = scenario_window(sc)

    def digest(directory: Path, layout: str, encoding: str) -> str:
        backfill(sc, CsvSink(sc, directory, layout=layout, encoding=encoding), w.start_us, w.end_us)
        h = hashlib.sha256()
        for p in sorted(directory.iterdir()):
            h.update(p.name.encode() + p.read_bytes())
        return h.hexdigest()

    assert digest(tmp_path / "a", "long", "utf-8") == digest(tmp_path / "b", "long", "utf-8")
    assert digest(tmp_path / "c", "wide", "gb18030") == digest(tmp_path / "d", "wide", "gb18030")
    other = load_scenario("faults", {"end": "2023-06-10", "seed": 1})
    backfill(other, CsvSink(other, tmp_path / "e"), w.start_us, w.end_us)
    assert (
        digest(tmp_path / "f", "long", "utf-8")
        != hashlib.sha256(
            b"".join(p.name.encode() + p.read_bytes() for p in sorted((tmp_path / "e").iterdir()))
        ).hexdigest()
    )
    # MQTT payloads too
    sink_a, sink_b = ListSink(), ListSink()
    backfill(sc, sink_a, w.start_us, w.end_us)
    backfill(sc, sink_b, w.start_us, w.end_us)
    payloads = [[m[2] for m in messages(pd.concat(s.frames), 50)] for s in (sink_a, sink_b)]
    assert payloads[0] == payloads[1]


def test_live_windows_send_the_same_rows_as_one_backfill() -> None:
    sc = load_scenario("faults", {"end": "2023-06-03"})
    w = scenario_window(sc)
    one = ListSink()
    backfill(sc, one, w.start_us, w.end_us)
    # the live loop steps through short windows, sending what is due by each window's end
    many = ListSink()
    sim = Simulation(sc, many)
    a = w.start_us
    while a <= w.end_us:
        b = min(a + 3 * 3600 * US - 1, w.end_us)
        sim.step(Window(a, b), b)
        a = b + 1
    sim.flush()
    cols = ["send_us", "ts_us", "operator", "metric", "region", "entity", "ts", "value", "payload_operator", "raw"]
    whole = sort_outbox(pd.concat(one.frames, ignore_index=True))[cols]
    pieces = sort_outbox(pd.concat(many.frames, ignore_index=True))[cols]
    pd.testing.assert_frame_equal(whole, pieces)


def test_wide_gb18030_files_are_one_per_operator_per_month_with_spreadsheet_dates(tmp_path: Path) -> None:
    sc = load_scenario("jiangxi-2023")
    backfill(sc, CsvSink(sc, tmp_path, layout="wide", encoding="gb18030"), *_range(sc, "2023-05-31", "2023-06-30"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "jiangxi-2023-cmcc-2023-05.csv" in names and "jiangxi-2023-cmcc-2023-06.csv" in names
    data = (tmp_path / "jiangxi-2023-ctcc-2023-06.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("gb18030").splitlines()
    assert text[0].startswith("ts,region,城市,operator,entity,")
    assert any(line.startswith("2023-06,360100,南昌市,ctcc,,") for line in text)  # a month-end statistics row
    assert any(line.startswith("2023-06-15,360700,赣州市,ctcc,,") for line in text)  # a daily traffic row


def test_no_faults_means_every_true_observation_is_sent_once() -> None:
    sc = load_scenario("jiangxi-2023")
    truth = generate(sc, Window(*_range(sc, "2023-06-29", "2023-06-30")))
    out = FaultInjector(sc).outbox(truth)
    assert len(out) == len(truth) and (out["fault"] == "").all()


def _range(sc, a: str, b: str) -> tuple[int, int]:
    from simulators.timeline import parse_instant

    return parse_instant(a, sc.zone), parse_instant(b, sc.zone)


def test_a_late_observation_is_held_back_until_its_send_time() -> None:
    sc = load_scenario("faults", {"end": "2023-06-02"})
    w = scenario_window(sc)
    sink = ListSink()
    sim = Simulation(sc, sink)
    sim.step(Window(w.start_us, w.start_us + DAY_US - 1), w.start_us + DAY_US - 1)
    sent = pd.concat(sink.frames)
    assert (sent["send_us"] <= w.start_us + DAY_US - 1).all()
    assert (sim.pending["send_us"] > w.start_us + DAY_US - 1).all() and len(sim.pending) > 0


def test_live_mode_sends_each_report_when_the_clock_reaches_it() -> None:
    from simulators.run import live

    sc = load_scenario("faults", {"end": "2023-06-02"})
    w = scenario_window(sc)
    now = [w.start_us / US + 6 * 3600]  # the clock starts six hours into the range
    seen: list[tuple[float, pd.DataFrame]] = []

    class ClockSink(ListSink):
        def send(self, out: pd.DataFrame) -> None:
            seen.append((now[0], out))
            super().send(out)

    def sleep(seconds: float) -> None:
        now[0] += 3600  # each tick of the live loop, an hour passes

    sink = ClockSink()
    live(sc, sink, w.start_us, until_us=w.end_us, clock=lambda: now[0], sleep=sleep)
    # nothing was sent before its time
    for at_s, out in seen:
        assert (out["send_us"] <= at_s * US).all()
    # the first send is the backfill of the six hours before the clock's start
    assert seen[0][1]["ts_us"].max() <= w.start_us + 6 * 3600 * US
    # and, late rows aside, live sends what a backfill of the same range sends
    one = ListSink()
    backfill(sc, one, w.start_us, w.end_us, flush=False)
    cols = ["send_us", "ts_us", "operator", "metric", "region", "entity", "value"]
    pd.testing.assert_frame_equal(
        sort_outbox(pd.concat(sink.frames, ignore_index=True))[cols],
        sort_outbox(pd.concat(one.frames, ignore_index=True))[cols],
    )
