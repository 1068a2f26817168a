"""The metric catalogue (docs/interface.md §2) and derived indicators (§3): units, kinds, plausibility bounds.

This is the one place code, docs and tests read to know what a metric is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    GAUGE = "gauge"  # a level at ts; combine: sum of each series' latest value
    DELTA = "delta"  # a volume for the interval ending at ts; combine: sum
    COUNTER = "counter"  # a cumulative register; combine: sum of increases (resets handled)


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric operators push."""

    id: str
    unit: str
    kind: Kind
    description: str
    #: Largest plausible value of one observation (per city / per entity); beyond it is a typo.
    max_value: float
    #: Values must be whole numbers (count and 0/1 units).
    integer: bool = False
    #: Observations must name an entity (a data centre).
    entity_required: bool = False
    #: Pushed by the administration, may be at province level.
    admin_only: bool = False
    #: Expected push cadence in seconds (stale after 2x this without news).
    cadence_s: int = 31 * 86400


@dataclass(frozen=True, slots=True)
class Indicator:
    """Something the plans are written in: a pushed metric or a ratio/increase derived from them."""

    id: str
    unit: str
    description: str
    #: How it is computed: "metric" (the pushed metric itself), "increase", "ratio", "count_cities".
    derivation: str
    #: Metrics read: for "ratio" (numerator, denominator); for "increase" (gauge,); for metric (itself,).
    inputs: tuple[str, ...] = field(default_factory=tuple)
    #: Multiply the ratio by this (100 for percentages).
    scale: float = 1.0
    kind: Kind | None = None
    #: Physical range projections are kept in; None = by unit (≥ 0, shares ≤ 100; metrics.verdict).
    physical_min: float | None = None
    physical_max: float | None = None


_DAY = 86400
_M = 1_000_000

METRICS: dict[str, Metric] = {
    m.id: m
    for m in [
        Metric("bs5g_total", "count", Kind.GAUGE, "5G base stations in service (开通)", 1 * _M, integer=True),
        Metric("users_5g", "count", Kind.GAUGE, "5G terminal users", 100 * _M, integer=True),
        Metric("gigabit_users", "count", Kind.GAUGE, "gigabit broadband users", 50 * _M, integer=True),
        Metric("iot_terminals_mobile", "count", Kind.GAUGE, "mobile (cellular) IoT terminals", 500 * _M, integer=True),
        Metric(
            "iot_connections_pan", "count", Kind.GAUGE, "pan-IoT connections, all access types", 1000 * _M, integer=True
        ),
        Metric(
            "traffic_mobile_gb", "GB", Kind.DELTA, "mobile traffic in the interval ending at ts", 1e12, cadence_s=_DAY
        ),
        Metric(
            "ipv6_traffic_mobile_gb",
            "GB",
            Kind.DELTA,
            "IPv6 part of mobile traffic in the interval",
            1e12,
            cadence_s=_DAY,
        ),
        Metric(
            "traffic_fixed_gb",
            "GB",
            Kind.DELTA,
            "fixed-network traffic in the interval ending at ts",
            1e12,
            cadence_s=_DAY,
        ),
        Metric(
            "ipv6_traffic_fixed_gb",
            "GB",
            Kind.DELTA,
            "IPv6 part of fixed-network traffic in the interval",
            1e12,
            cadence_s=_DAY,
        ),
        Metric(
            "dc_energy_total_kwh",
            "kWh",
            Kind.COUNTER,
            "cumulative facility energy meter of a data centre",
            1e13,
            entity_required=True,
            cadence_s=300,
        ),
        Metric(
            "dc_energy_it_kwh",
            "kWh",
            Kind.COUNTER,
            "cumulative IT-equipment energy meter of a data centre",
            1e13,
            entity_required=True,
            cadence_s=300,
        ),
        Metric(
            "bs5g_energy_kwh",
            "kWh",
            Kind.DELTA,
            "energy used by the operator's 5G base stations in the interval",
            1e11,
            cadence_s=_DAY,
        ),
        Metric(
            "gigabit_city",
            "0/1",
            Kind.GAUGE,
            "the city holds the national gigabit-city designation",
            1,
            integer=True,
            admin_only=True,
            cadence_s=366 * _DAY,
        ),
        Metric(
            "population",
            "persons",
            Kind.GAUGE,
            "resident population (reference series)",
            2e9,
            integer=True,
            admin_only=True,
            cadence_s=366 * _DAY,
        ),
    ]
}

DERIVED_INDICATORS: dict[str, Indicator] = {
    i.id: i
    for i in [
        Indicator("bs5g_new", "count", "5G base stations added within the period", "increase", ("bs5g_total",)),
        Indicator("users_5g_new", "count", "5G terminal users added within the period", "increase", ("users_5g",)),
        Indicator(
            "ipv6_share_mobile",
            "%",
            "IPv6 share of mobile traffic (ratio of sums)",
            "ratio",
            ("ipv6_traffic_mobile_gb", "traffic_mobile_gb"),
            scale=100.0,
        ),
        Indicator(
            "ipv6_share_fixed",
            "%",
            "IPv6 share of fixed traffic (ratio of sums)",
            "ratio",
            ("ipv6_traffic_fixed_gb", "traffic_fixed_gb"),
            scale=100.0,
        ),
        Indicator(
            "dc_pue",
            "ratio",
            "data-centre PUE: Σ facility energy / Σ IT energy",
            "ratio",
            ("dc_energy_total_kwh", "dc_energy_it_kwh"),
            physical_min=1.0,  # facility energy includes the IT energy
        ),
        Indicator(
            "gigabit_cities", "count", "cities holding the gigabit-city designation", "count_cities", ("gigabit_city",)
        ),
        Indicator(
            "iot_per_capita",
            "ratio",
            "pan-IoT connections per resident",
            "ratio",
            ("iot_connections_pan", "population"),
        ),
        Indicator(
            "bs5g_efficiency",
            "GB/kWh",
            "mobile traffic per kWh of 5G base-station energy",
            "ratio",
            ("traffic_mobile_gb", "bs5g_energy_kwh"),
        ),
    ]
}

INDICATORS: dict[str, Indicator] = {
    **{m.id: Indicator(m.id, m.unit, m.description, "metric", (m.id,), kind=m.kind) for m in METRICS.values()},
    **DERIVED_INDICATORS,
}


def metric(metric_id: str) -> Metric:
    try:
        return METRICS[metric_id]
    except KeyError:
        raise KeyError(f"unknown metric {metric_id!r}; known: {', '.join(sorted(METRICS))}") from None


def indicator(indicator_id: str) -> Indicator:
    try:
        return INDICATORS[indicator_id]
    except KeyError:
        raise KeyError(f"unknown indicator {indicator_id!r}; known: {', '.join(sorted(INDICATORS))}") from None
