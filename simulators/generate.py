"""The generator core: a scenario, a seed and a time window → the true observations, as a frame.

Pure and deterministic: every value is a function of (seed, series identity, ts) only, so a window
generated alone equals the same rows of a larger backfill, and the same seed gives the same bytes.
Columns: ts_us (int64, UTC µs), metric, region (int), operator, entity, value (float).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from reference.operators import ADMIN_OPERATOR
from simulators import noise
from simulators.scenario import DataCentre, Gauge, Scenario
from simulators.timeline import DAY_US, US, local_midnight_us, local_parts, parse_instant, ticks, us_to_local

COLUMNS = ["ts_us", "metric", "region", "operator", "entity", "value"]
_YEAR_DAYS = 365.2425
#: Day of year (0-based) when data-centre PUE peaks (late July).
_PUE_PEAK_DOY = 205


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts_us": pd.Series(dtype=np.int64),
            "metric": pd.Series(dtype=object),
            "region": pd.Series(dtype=np.int64),
            "operator": pd.Series(dtype=object),
            "entity": pd.Series(dtype=object),
            "value": pd.Series(dtype=np.float64),
        }
    )


@dataclass(frozen=True, slots=True)
class Window:
    """A closed range of report times [start_us, end_us]."""

    start_us: int
    end_us: int


def scenario_window(scenario: Scenario) -> Window:
    tz = scenario.zone
    return Window(parse_instant(scenario.start, tz), parse_instant(scenario.end, tz))


# -- weights and splits --------------------------------------------------------------------------


def city_weights(scenario: Scenario) -> dict[int, float]:
    total = sum(c.weight for c in scenario.cities.values())
    return {code: scenario.cities[code].weight / total for code in sorted(scenario.cities)}


def operator_shares(scenario: Scenario, shares: dict[str, float]) -> dict[str, float]:
    present = {op: s for op, s in sorted(shares.items()) if op in scenario.operators and s > 0}
    total = sum(present.values())
    return {op: s / total for op, s in present.items()}


@lru_cache(maxsize=65536)
def _jitter(seed: int, what: str, op: str, city: int) -> float:
    """A fixed per-(operator, city) departure from the plain product of shares (±15 %)."""
    u = noise.uniform(noise.stream_key(seed, "jitter", what, op, city), np.zeros(1))[0]
    return 0.85 + 0.3 * float(u)


@dataclass(frozen=True, slots=True)
class Split:
    """A province figure's start and growth, divided across (operator, city) cells."""

    cells: tuple[tuple[str, int], ...]
    start: np.ndarray
    growth: np.ndarray


def split(scenario: Scenario, what: str, shares: dict[str, float], start: float, growth: float) -> Split:
    """Start split by operator share × city weight (with a fixed jitter); growth also by pace.

    Sums are exact: Σ start = start and Σ growth = growth, so paces move growth between cells
    (a lagging operator's shortfall is others' surplus) while the province follows the design.
    """
    ops = operator_shares(scenario, shares)
    cities = city_weights(scenario)
    cells = tuple((op, c) for op in ops for c in cities)
    base = np.array([ops[op] * cities[c] * _jitter(scenario.seed, what, op, c) for op, c in cells])
    paced = base * np.array([scenario.operators[op].pace * scenario.cities[c].pace for op, c in cells])
    start_arr = start * base / base.sum()
    growth_arr = growth * paced / paced.sum() if paced.sum() > 0 else np.zeros(len(cells))
    return Split(cells, start_arr, growth_arr)


# -- plan-year fractions -------------------------------------------------------------------------


def plan_fraction(ts_us: np.ndarray, scenario: Scenario, profile: str | list[float]) -> np.ndarray:
    """Share of the plan year's growth done by each instant: 0 at 1 January, 1 at the year's end.

    A monthly profile spreads the year's growth by month (linear within a month); later years
    repeat the same annual growth, earlier ones are extrapolated backwards.
    """
    ts_us = np.asarray(ts_us, dtype=np.int64)
    year, month, doy, _ = local_parts(ts_us, scenario.zone)
    if isinstance(profile, list):
        w = np.asarray(profile, dtype=float)
        w = w / w.sum()
    else:
        w = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]) / 365.25
    cum = np.concatenate([[0.0], np.cumsum(w)])
    month_start_doy = _month_start_doy(year, month)
    dim = _days_in_month(year, month)
    midnight = _day_start_vec(ts_us, scenario.zone) if ts_us.size else ts_us
    day_frac = (ts_us - midnight) / DAY_US
    within = (doy - month_start_doy + day_frac) / dim
    return (year - scenario.plan_year) + cum[month - 1] + w[month - 1] * within


def _local_midnight_of(ts_us: int, tz: ZoneInfo) -> int:
    return local_midnight_us(us_to_local(ts_us, tz).date(), tz)


def _month_start_doy(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    starts = np.array(
        [(date(int(y), int(m), 1) - date(int(y), 1, 1)).days for y, m in zip(year, month, strict=True)], dtype=float
    )
    return starts


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    import calendar

    return np.array([calendar.monthrange(int(y), int(m))[1] for y, m in zip(year, month, strict=True)], dtype=float)


def _years_since_plan(ts_us: np.ndarray, scenario: Scenario) -> np.ndarray:
    origin = parse_instant(date(scenario.plan_year, 1, 1), scenario.zone)
    return (np.asarray(ts_us, dtype=np.int64) - origin) / (DAY_US * _YEAR_DAYS)


def _effective_ts(report_ts: np.ndarray, cadence_kind: str) -> np.ndarray:
    """A month-end report (00:00 on the last day) stands for the state at the end of that day."""
    return report_ts + DAY_US if cadence_kind == "monthly" else report_ts


# -- series ----------------------------------------------------------------------------------------


class Part(NamedTuple):
    """Column arrays of one series' rows (cheaper than a frame per series)."""

    ts_us: np.ndarray
    metric: str
    region: int
    operator: str
    entity: str
    value: np.ndarray


def _frame(ts: np.ndarray, metric: str, region: int, operator: str, entity: str, values: np.ndarray) -> Part:
    return Part(ts.astype(np.int64), metric, region, operator, entity, values.astype(np.float64))


def _concat(parts: list[Part]) -> pd.DataFrame:
    sizes = np.array([len(p.ts_us) for p in parts])

    def rep(attr: str, dtype: object) -> np.ndarray:
        return np.repeat(np.array([getattr(p, attr) for p in parts], dtype=dtype), sizes)  # type: ignore[call-overload]

    return pd.DataFrame(
        {
            "ts_us": np.concatenate([p.ts_us for p in parts]),
            "metric": rep("metric", object),
            "region": rep("region", np.int64),
            "operator": rep("operator", object),
            "entity": rep("entity", object),
            "value": np.concatenate([p.value for p in parts]),
        }
    )


def gauge_levels(
    scenario: Scenario, metric: str, gauge: Gauge, eff_ts: np.ndarray, with_noise: bool = True
) -> tuple[tuple[tuple[str, int], ...], np.ndarray]:
    """(cells, levels[cell, t]) of a gauge at effective instants."""
    sp = split(scenario, metric, gauge.operators, gauge.start, gauge.province_end() - gauge.start)
    f = plan_fraction(eff_ts, scenario, gauge.profile)
    levels = sp.start[:, None] + sp.growth[:, None] * f[None, :]
    if with_noise and gauge.noise > 0:
        eps = noise.normal(noise.keys_of(scenario.seed, "gauge", metric, cells=list(sp.cells)), eff_ts // US)
        levels += sp.growth[:, None] * gauge.noise * eps * np.minimum(np.abs(f), 1.0)[None, :]
    return sp.cells, np.maximum(levels, 0.0)


def _gauges(scenario: Scenario, w: Window) -> Iterator[Part]:
    for metric in sorted(scenario.gauges):
        g = scenario.gauges[metric]
        cad = scenario.cadence_of(g.cadence)
        ts = ticks(cad, w.start_us, w.end_us, scenario.zone)
        if not ts.size:
            continue
        cells, levels = gauge_levels(scenario, metric, g, _effective_ts(ts, cad.kind))
        for i, (op, city) in enumerate(cells):
            yield _frame(ts, metric, city, op, "", np.round(levels[i]))


def _traffic(scenario: Scenario, w: Window) -> Iterator[Part]:
    for t in scenario.traffic:
        cad = scenario.cadence_of(t.cadence)
        ts = ticks(cad, w.start_us, w.end_us, scenario.zone)
        if not ts.size:
            continue
        interval_s = cad.nominal_s if cad.kind != "monthly" else 30 * 86400
        per_report = t.volume_gb_per_day * interval_s / 86400
        sp = split(scenario, t.total_metric, t.operators, per_report, per_report)
        # IPv6 share: each cell rises by Δ·pace; Δ makes the traffic-weighted province share hit the end value.
        s0 = np.array([t.ipv6_share.start_by_operator.get(op, t.ipv6_share.start) / 100 for op, _ in sp.cells])
        s1 = t.ipv6_share.province_end() / 100
        pace = np.array([scenario.operators[op].pace * scenario.cities[c].pace for op, c in sp.cells])
        weighted_pace = float((sp.start * pace).sum() / sp.start.sum())
        weighted_s0 = float((sp.start * s0).sum() / sp.start.sum())
        delta = (s1 - weighted_s0) / weighted_pace if weighted_pace > 0 else 0.0
        mid = ts - interval_s * US // 2  # the middle of the interval the report covers
        f = plan_fraction(mid, scenario, "linear")
        growth = (1 + t.growth_per_year) ** _years_since_plan(mid, scenario)
        _, _, _, weekday = local_parts(mid, scenario.zone)
        weekly = np.where(weekday >= 5, 1 + t.weekend_uplift, 1.0)
        keys = noise.keys_of(scenario.seed, "traffic", t.total_metric, cells=list(sp.cells))
        eps = noise.normal(keys, ts // US)
        totals = np.round(sp.start[:, None] * (growth * weekly)[None, :] * np.maximum(1 + t.noise * eps, 0.2), 3)
        shares = np.clip(s0[:, None] + delta * pace[:, None] * f[None, :], 0.0, 0.99)
        ipv6 = np.round(totals * shares, 3)
        for i, (op, city) in enumerate(sp.cells):
            yield _frame(ts, t.total_metric, city, op, "", totals[i])
            yield _frame(ts, t.ipv6_metric, city, op, "", ipv6[i])


def _base_station_energy(scenario: Scenario, w: Window) -> Iterator[Part]:
    b = scenario.base_station_energy
    if b is None:
        return
    cad = scenario.cadence_of(b.cadence)
    ts = ticks(cad, w.start_us, w.end_us, scenario.zone)
    if not ts.size:
        return
    interval_s = cad.nominal_s
    mid = ts - interval_s * US // 2
    g = scenario.gauges[b.stations_metric]
    cells, stations = gauge_levels(scenario, b.stations_metric, g, mid, with_noise=False)
    saving = (1 - b.saving_per_year) ** _years_since_plan(mid, scenario)
    eps = noise.normal(noise.keys_of(scenario.seed, "bs-energy", cells=list(cells)), ts // US)
    kwh = stations * b.kwh_per_station_day * interval_s / 86400 * saving[None, :] * np.maximum(1 + b.noise * eps, 0.2)
    kwh = np.round(kwh, 3)
    for i, (op, city) in enumerate(cells):
        yield _frame(ts, b.metric, city, op, "", kwh[i])


def _admin(scenario: Scenario, w: Window) -> Iterator[Part]:
    tz = scenario.zone
    pop = scenario.admin.population
    if pop:
        ts = ticks(scenario.cadence_of(pop.cadence), w.start_us, w.end_us, tz)
        if ts.size:
            yield _frame(ts, "population", pop.region, ADMIN_OPERATOR, "", np.full(len(ts), float(pop.value)))
    gc = scenario.admin.gigabit_city
    if gc:
        ts = ticks(scenario.cadence_of(gc.cadence), w.start_us, w.end_us, tz)
        if ts.size:
            for city in sorted(scenario.cities):
                since = gc.designated.get(city)
                since_us = parse_instant(since, tz) if since else None
                values = (ts >= since_us).astype(float) if since_us is not None else np.zeros(len(ts))
                yield _frame(ts, "gigabit_city", city, ADMIN_OPERATOR, "", values)


# -- data centres ------------------------------------------------------------------------------------


def data_centre_sites(scenario: Scenario) -> list[DataCentre]:
    """The named data centres plus any synthetic ones (deterministic from the seed)."""
    dc = scenario.data_centres
    if dc is None:
        return []
    sites = list(dc.sites)
    syn = dc.synthetic
    if syn:
        cities = sorted(scenario.cities)
        weights = np.array([scenario.cities[c].weight for c in cities])
        cum = np.cumsum(weights) / weights.sum()
        n = np.arange(syn.count)
        u = noise.uniform(noise.stream_key(scenario.seed, "dc-synthetic"), n)
        v = noise.uniform(noise.stream_key(scenario.seed, "dc-synthetic-city"), n)
        p = noise.uniform(noise.stream_key(scenario.seed, "dc-synthetic-pue"), n)
        for i in range(syn.count):
            city = cities[int(np.searchsorted(cum, v[i], side="right").clip(0, len(cities) - 1))]
            sites.append(
                DataCentre(
                    id=f"{syn.prefix}-{i:05d}",
                    operator=syn.operators[i % len(syn.operators)],
                    city=city,
                    it_load_kw=round(syn.it_load_kw[0] + (syn.it_load_kw[1] - syn.it_load_kw[0]) * float(u[i]), 1),
                    pue=round(syn.pue[0] + (syn.pue[1] - syn.pue[0]) * float(p[i]), 3),
                )
            )
    return sites


def _intraday_shape(key: int, day_starts: np.ndarray, n: int, amplitude: float, peak_hour: float) -> np.ndarray:
    """Cumulative share of each day's energy at each of the n interval ends: shape [days, n + 1]."""
    k = np.arange(1, n + 1)
    hours = (k - 0.5) * 24.0 / n
    base = 1 + amplitude * np.cos(2 * np.pi * (hours - peak_hour) / 24.0)
    counters = (day_starts[:, None] // US) + k[None, :] * (86400 // n)
    w = base[None, :] * (1 + 0.03 * (noise.uniform(key, counters) - 0.5))
    cum = np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)
    return np.concatenate([np.zeros((len(day_starts), 1)), cum], axis=1)


def dc_daily_energy(scenario: Scenario, site: DataCentre, day_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(IT kWh, facility kWh) of each local day starting at day_starts: load × 24 h, PUE seasonal."""
    years = _years_since_plan(day_starts, scenario)
    _, _, doy, _ = local_parts(day_starts + DAY_US // 2, scenario.zone)
    eps_it = noise.normal(noise.stream_key(scenario.seed, "dc-it", site.id), day_starts // US)
    eps_pue = noise.normal(noise.stream_key(scenario.seed, "dc-pue", site.id), day_starts // US)
    it = site.it_load_kw * 24 * (1 + site.it_growth_per_year) ** years * (1 + 0.02 * eps_it)
    pue = site.pue + site.pue_summer * np.cos(2 * np.pi * (doy - _PUE_PEAK_DOY) / _YEAR_DAYS) + 0.01 * eps_pue
    return it, it * np.maximum(pue, 1.02)


def _data_centres(scenario: Scenario, w: Window) -> Iterator[Part]:
    dc = scenario.data_centres
    if dc is None:
        return
    tz = scenario.zone
    cad = scenario.cadence_of(dc.cadence)
    ts = ticks(cad, w.start_us, w.end_us, tz)
    if not ts.size:
        return
    n = 86400 // cad.seconds
    origin = scenario_window(scenario).start_us
    origin_day = _day_start(origin, tz)
    first_day = min(origin_day, _day_start(int(ts[0]), tz))
    last_day = _day_start(int(ts[-1]), tz)
    day_starts = np.arange(first_day, last_day + DAY_US, DAY_US, dtype=np.int64)
    # the reading at a tick: meter value at its day's start + that day's energy × cumulative shape
    day_idx = (ts - _day_start_vec(ts, tz)) // (cad.seconds * US)
    tick_day = (_day_start_vec(ts, tz) - first_day) // DAY_US
    origin_idx = (origin_day - first_day) // DAY_US
    window_days = np.unique(tick_day)
    for site in data_centre_sites(scenario):
        it_day, fac_day = dc_daily_energy(scenario, site, day_starts)
        meter_it0 = site.meter_start_kwh
        if meter_it0 is None:
            u = noise.uniform(noise.stream_key(scenario.seed, "dc-meter", site.id), np.zeros(1))[0]
            meter_it0 = site.it_load_kw * 24 * 365 * (1 + 3 * float(u))
        meter_fac0 = meter_it0 * site.pue
        for metric, daily, start, amp, peak, key in (
            (dc.it_metric, it_day, meter_it0, 0.04, 15.0, "it"),
            (dc.total_metric, fac_day, meter_fac0, 0.10, 14.0, "fac"),
        ):
            cum = np.concatenate([[0.0], np.cumsum(daily)])
            at_day_start = start + cum[:-1] - cum[origin_idx]
            shape = np.zeros((len(day_starts), n + 1))
            shape[window_days] = _intraday_shape(
                noise.stream_key(scenario.seed, "dc-shape", key, site.id), day_starts[window_days], n, amp, peak
            )
            values = at_day_start[tick_day] + daily[tick_day] * shape[tick_day, day_idx]
            yield _frame(ts, metric, site.city, site.operator, site.id, np.round(values, 3))


def _day_start(ts_us: int, tz: ZoneInfo) -> int:
    return _local_midnight_of(ts_us, tz)


def _day_start_vec(ts: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Local midnight before each ts (the zone's offset at the first ts; Asia/Shanghai is fixed)."""
    off = int((us_to_local(int(ts[0]), tz).utcoffset() or timedelta(0)).total_seconds()) * US
    return ((ts + off) // DAY_US) * DAY_US - off


def _base_station_meters(scenario: Scenario, w: Window) -> Iterator[Part]:
    b = scenario.base_station_meters
    if b is None:
        return
    cad = scenario.cadence_of(b.cadence)
    ts = ticks(cad, w.start_us, w.end_us, scenario.zone)
    if not ts.size:
        return
    cities = sorted(scenario.cities)
    hours = ((ts // US) % 86400) / 3600 + 8
    cycle = 1 + 0.15 * np.cos(2 * np.pi * (hours - 20) / 24)
    rate = noise.uniform(noise.stream_key(scenario.seed, "bs-meter-rate"), np.arange(b.count))
    for i in range(b.count):
        op = b.operators[i % len(b.operators)]
        city = cities[(i // len(b.operators)) % len(cities)]
        kwh_h = b.kwh_per_hour[0] + (b.kwh_per_hour[1] - b.kwh_per_hour[0]) * float(rate[i])
        eps = noise.normal(noise.stream_key(scenario.seed, "bs-meter", i), ts // US)
        values = kwh_h * cad.seconds / 3600 * cycle * np.maximum(1 + 0.05 * eps, 0.2)
        yield _frame(ts, b.metric, city, op, f"{b.prefix}-{op}-{i:05d}", np.round(values, 3))


# -- the whole scenario ----------------------------------------------------------------------------


def generate(scenario: Scenario, window: Window | None = None) -> pd.DataFrame:
    """Every true observation of the scenario with a report time in the window, in a stable order:
    by ts, operator, metric, region, entity."""
    w = window or scenario_window(scenario)
    parts = [
        *_admin(scenario, w),
        *_gauges(scenario, w),
        *_traffic(scenario, w),
        *_base_station_energy(scenario, w),
        *_data_centres(scenario, w),
        *_base_station_meters(scenario, w),
    ]
    parts = [p for p in parts if len(p.ts_us)]
    if not parts:
        return empty_frame()
    frame = _concat(parts)
    frame = frame.sort_values(["ts_us", "operator", "metric", "region", "entity"], kind="mergesort")
    return frame.reset_index(drop=True)
