"""Fault injection and the outbox: true observations → what a real, imperfect sender would emit.

Each observation draws one number that decides its fault (at most one kind each, so each kind
appears at its configured rate): a gap drops it, a duplicate sends it twice, out-of-order and late
send it after later reports, a revision first sends a wrong value then the right one, malformed
breaks it, future_ts dates it years ahead, foreign_operator names another operator in the payload.
Counter resets (a replaced meter) restart a cumulative series from zero, keeping its increases.

The outbox is a frame of items ready for any sink (JSON tokens as text), ordered by send time.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reference.catalogue import METRICS, Kind
from simulators import noise
from simulators.scenario import FAULT_KINDS, Scenario
from simulators.timeline import DAY_US, US, format_ts

OUTBOX_COLUMNS = [
    "send_us",  # when the sender emits it
    "ts_us",  # the observation's true report time (ordering; wide CSV rows)
    "operator",  # the sender: MQTT topic / credentials / file
    "metric",
    "region",  # text as sent
    "entity",
    "ts",  # text as sent
    "value",  # JSON token as sent: a number, or e.g. "n/a" in quotes
    "payload_operator",  # operator named in the payload ("" = none)
    "raw",  # a whole broken payload sent instead of an item ("" = none)
    "fault",  # the fault kind this row carries ("" = none)
    "copy",  # 0 for the first emission of an observation, 1 for its second (duplicate, revision)
]

#: Ways an observation can be malformed, each refused by docs/interface.md §4 in JSON and CSV alike.
MALFORMED_VARIANTS = ("value_text", "negative_value", "unknown_region", "invalid_ts", "not_json")

_COUNTERS = {m.id for m in METRICS.values() if m.kind == Kind.COUNTER}
_INTEGERS = {m.id for m in METRICS.values() if m.integer}


def value_tokens(metric: np.ndarray, value: np.ndarray) -> np.ndarray:
    """JSON number text: whole numbers for count metrics, shortest float text otherwise."""
    value = np.asarray(value, dtype=np.float64)
    out = np.empty(len(value), dtype=object)
    is_int = pd.Series(metric).isin(_INTEGERS).to_numpy()
    if is_int.any():
        out[is_int] = np.round(value[is_int]).astype(np.int64).astype(str).astype(object)
    if (~is_int).any():
        out[~is_int] = [repr(float(v)) for v in value[~is_int]]
    return out


def cadence_of_metrics(scenario: Scenario) -> dict[str, int]:
    """Nominal seconds between reports of each metric in the scenario (for out-of-order delays)."""
    out: dict[str, int] = {}
    for metric, g in scenario.gauges.items():
        out[metric] = scenario.cadence_of(g.cadence).nominal_s
    for t in scenario.traffic:
        out[t.total_metric] = out[t.ipv6_metric] = scenario.cadence_of(t.cadence).nominal_s
    if scenario.base_station_energy:
        out[scenario.base_station_energy.metric] = scenario.cadence_of(scenario.base_station_energy.cadence).nominal_s
    if scenario.admin.population:
        out["population"] = scenario.cadence_of(scenario.admin.population.cadence).nominal_s
    if scenario.admin.gigabit_city:
        out["gigabit_city"] = scenario.cadence_of(scenario.admin.gigabit_city.cadence).nominal_s
    if scenario.data_centres:
        s = scenario.cadence_of(scenario.data_centres.cadence).nominal_s
        out[scenario.data_centres.total_metric] = out[scenario.data_centres.it_metric] = s
    if scenario.base_station_meters:
        out[scenario.base_station_meters.metric] = scenario.cadence_of(scenario.base_station_meters.cadence).nominal_s
    return out


@dataclass
class FaultInjector:
    """Turns consecutive windows of true observations into outbox rows; keeps counter-reset state."""

    scenario: Scenario
    #: per counter series: (offset subtracted since its last reset, last true reading)
    _counters: dict[Any, tuple[float, float]] = field(default_factory=dict)
    #: observations given each fault kind so far
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        rates = self.scenario.faults.rates()
        total = sum(v for k, v in rates.items() if k != "counter_reset")
        if total > 1:
            raise ValueError(f"fault rates add up to {total:.3f}; each observation takes at most one fault, keep ≤ 1")
        self._cadence = cadence_of_metrics(self.scenario)
        self._seed_key = noise.stream_key(self.scenario.seed, "faults")

    def outbox(self, truth: pd.DataFrame) -> pd.DataFrame:
        """Outbox rows for the true observations of one window (in ts order), sorted by send time."""
        if truth.empty:
            return empty_outbox()
        f = self.scenario.faults
        frame = truth.reset_index(drop=True)
        if f.any:
            keys = noise.row_keys(
                frame["metric"].to_numpy(),
                frame["region"].to_numpy(),
                frame["operator"].to_numpy(),
                frame["entity"].to_numpy(),
                frame["ts_us"].to_numpy(),
            )
            keys = keys ^ np.uint64(self._seed_key)
        else:  # a clean feed: no draws needed
            keys = np.ones(len(frame), dtype=np.uint64)
        value = frame["value"].to_numpy(dtype=np.float64).copy()
        fault = np.full(len(frame), "", dtype=object)
        if f.counter_reset > 0:
            value, reset = self._apply_resets(frame, value, noise.row_uniform(keys, 1) < f.counter_reset)
            fault[reset] = "counter_reset"
        # one draw decides each observation's fault kind
        u = noise.row_uniform(keys, 2) if f.any else np.ones(len(frame))
        kind = np.full(len(frame), "", dtype=object)
        lo = 0.0
        for k in FAULT_KINDS:
            if k == "counter_reset":
                continue
            rate = getattr(f, k)
            if rate > 0:
                kind[(u >= lo) & (u < lo + rate)] = k
            lo += rate
        fault = np.where(kind != "", kind, fault)
        self.counts.update(k for k in fault if k)
        ts_us = frame["ts_us"].to_numpy(dtype=np.int64)
        metric = frame["metric"].to_numpy(dtype=object)
        cadence_us = pd.Series(metric).map(self._cadence).fillna(86400).to_numpy(dtype=np.int64) * US
        v2 = noise.row_uniform(keys, 3) if f.any else u
        out = pd.DataFrame(
            {
                "send_us": ts_us.copy(),
                "ts_us": ts_us,
                "operator": frame["operator"].to_numpy(dtype=object),
                "metric": metric,
                "region": frame["region"].astype(str).to_numpy(dtype=object),
                "entity": frame["entity"].to_numpy(dtype=object),
                "ts": format_ts(ts_us, self.scenario.zone),
                "value": value_tokens(metric, value),
                "payload_operator": np.full(len(frame), "", dtype=object),
                "raw": np.full(len(frame), "", dtype=object),
                "fault": fault,
                "copy": np.zeros(len(frame), dtype=np.int64),
            }
        )
        extra: list[pd.DataFrame] = []
        # out of order: after the next one to three reports of the same series
        m = kind == "out_of_order"
        out.loc[m, "send_us"] = ts_us[m] + (cadence_us[m] * (1.2 + 2 * v2[m])).astype(np.int64)
        # late: hours to days
        m = kind == "late"
        lo_s, hi_s = f.late_delay_s
        out.loc[m, "send_us"] = ts_us[m] + ((lo_s + (hi_s - lo_s) * v2[m]) * US).astype(np.int64)
        # duplicate: sent again a minute later
        m = kind == "duplicate"
        if m.any():
            dup = out[m].copy()
            dup["send_us"] = dup["send_us"] + 60 * US
            dup["copy"] = 1
            extra.append(dup)
        # revision: a wrong preliminary value now, the right one a day later
        m = kind == "revision"
        if m.any():
            corrected = out[m].copy()
            corrected["send_us"] = corrected["send_us"] + DAY_US
            corrected["copy"] = 1
            sign = np.where(v2[m] < 0.5, -1.0, 1.0)
            wrong = value[m] * (1 + sign * (0.01 + 0.04 * noise.row_uniform(keys[m], 4)))
            wrong = np.where(wrong == value[m], value[m] + 1, wrong)
            out.loc[m, "value"] = value_tokens(metric[m], np.round(wrong, 3))
            extra.append(corrected)
        # malformed
        m = kind == "malformed"
        if m.any():
            variant = (noise.row_uniform(keys[m], 5) * len(MALFORMED_VARIANTS)).astype(int)
            idx = np.flatnonzero(m)
            for pos, var in zip(idx, variant, strict=True):
                name = MALFORMED_VARIANTS[var]
                if name == "value_text":
                    out.at[pos, "value"] = '"n/a"'
                elif name == "negative_value":
                    out.at[pos, "value"] = "-" + str(out.at[pos, "value"]).lstrip("-")
                    if out.at[pos, "value"] in ("-0", "-0.0"):
                        out.at[pos, "value"] = "-1"
                elif name == "unknown_region":
                    out.at[pos, "region"] = "369999"
                elif name == "invalid_ts":
                    out.at[pos, "ts"] = str(out.at[pos, "ts"])[:5] + "02-30T25:00:00+08:00"
                else:
                    item = item_json(out.iloc[[int(pos)]])[0]
                    out.at[pos, "raw"] = item[: max(len(item) // 2, 8)]  # truncated: not JSON
        # future timestamps
        m = kind == "future_ts"
        if m.any():
            out.loc[m, "ts"] = format_ts(ts_us[m] + f.future_shift_days * DAY_US, self.scenario.zone)
        # a foreign operator named in the payload
        m = kind == "foreign_operator"
        if m.any():
            ops = sorted(self.scenario.operators)
            sender = out.loc[m, "operator"].to_numpy(dtype=object)
            pick = (noise.row_uniform(keys[m], 6) * len(ops)).astype(int)
            foreign = np.array([ops[p] for p in pick], dtype=object)
            same = foreign == sender
            foreign[same] = [ops[(ops.index(s) + 1) % len(ops)] if s in ops else ops[0] for s in sender[same]]
            out.loc[m, "payload_operator"] = foreign
        # gaps
        out = out[kind != "gap"]
        if extra:
            out = pd.concat([out, *extra], ignore_index=True)
        return sort_outbox(out)

    def _apply_resets(self, frame: pd.DataFrame, value: np.ndarray, reset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Meter replacements: from a reset reading on, the series reads true − (true reading before it)."""
        is_counter = frame["metric"].isin(_COUNTERS).to_numpy()
        reset = reset & is_counter
        out = value.copy()
        marked = np.zeros(len(frame), dtype=bool)
        if not is_counter.any():
            return out, marked
        sub = frame[is_counter]
        for key, idx in sub.groupby(["metric", "region", "operator", "entity"], sort=True).indices.items():
            rows = np.flatnonzero(is_counter)[idx]
            rows = rows[np.argsort(frame["ts_us"].to_numpy()[rows], kind="stable")]
            true = value[rows]
            offset, last_true = self._counters.get(key, (0.0, float("nan")))
            prev_true = np.concatenate([[last_true], true[:-1]])
            r = reset[rows] & ~np.isnan(prev_true)
            last_reset = np.maximum.accumulate(np.where(r, np.arange(len(rows)), -1))
            offsets = np.where(last_reset >= 0, prev_true[np.maximum(last_reset, 0)], offset)
            out[rows] = np.round(true - offsets, 3)
            marked[rows[r]] = True
            self._counters[key] = (float(offsets[-1]), float(true[-1]))
        return out, marked


def empty_outbox() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=np.int64 if c in ("send_us", "ts_us", "copy") else object) for c in OUTBOX_COLUMNS}
    )


def sort_outbox(out: pd.DataFrame) -> pd.DataFrame:
    """Send order, independent of how the range was cut into windows."""
    return out.sort_values(
        ["send_us", "ts_us", "operator", "metric", "region", "entity", "copy"], kind="mergesort"
    ).reset_index(drop=True)


def item_json(out: pd.DataFrame, *, with_metric: bool = False) -> np.ndarray:
    """Each outbox row as the JSON object an operator would send (or its broken raw text)."""
    if out.empty:
        return np.empty(0, dtype=object)
    ts = out["ts"].to_numpy(dtype=object)
    region = out["region"].to_numpy(dtype=object)
    value = out["value"].to_numpy(dtype=object)
    entity = out["entity"].to_numpy(dtype=object)
    payload_op = out["payload_operator"].to_numpy(dtype=object)
    raw = out["raw"].to_numpy(dtype=object)
    head = '"ts":"' + ts + '","region":"' + region + '"'
    head = ('{"metric":"' + out["metric"].to_numpy(dtype=object) + '",' + head) if with_metric else "{" + head
    text = head + ',"value":' + value
    has_entity = entity != ""
    if has_entity.any():
        text[has_entity] = (
            text[has_entity] + ',"entity":' + np.array([json.dumps(e) for e in entity[has_entity]], dtype=object)
        )
    has_op = payload_op != ""
    if has_op.any():
        text[has_op] = text[has_op] + ',"operator":"' + payload_op[has_op] + '"'
    text = text + "}"
    broken = raw != ""
    if broken.any():
        text[broken] = raw[broken]
    return text
