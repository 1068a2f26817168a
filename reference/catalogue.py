"""The metric catalogue (docs/interface.md §2) and derived indicators (§3): units, kinds, plausibility bounds.

This is the one place code, docs and tests read to know what a metric is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    GAUGE = "gauge"  # a level at ts; combine: sum of each series' latest value
    DELTA = "delta"  # a volume for the interval ending at ts; combine: sum
    COUNTER = "counter"  # a cumulative register; combine: sum of increases (resets handled)
    YTD = "ytd"  # the volume since 1 January of ts's year (Asia/Shanghai); combine: sum of volumes


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric operators push."""

    id: str
    unit: str
    kind: Kind
    description: str
    #: Largest plausible value of one observation, at any level up to the nation's total; beyond it is a typo.
    max_value: float
    #: Values must be whole numbers (count and 0/1 units).
    integer: bool = False
    #: Observations must name an entity (a data centre).
    entity_required: bool = False
    #: Pushed by the administration, may be at province level.
    admin_only: bool = False
    #: Expected push cadence in seconds (stale after 2x this without news).
    cadence_s: int = 31 * 86400
    #: Physically possible values (counts ≥ 0, flags 0–1); projections stay inside.
    physical_min: float = 0.0
    physical_max: float = math.inf


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
    #: For an increase with a reported flow beside the stock (bs5g_new): the year-to-date metric used
    #: where it is reported for the scope, before the stock's increase.
    flow: str | None = None
    #: Physically possible values (shares 0–100, PUE ≥ 1); projections stay inside.
    physical_min: float = 0.0
    physical_max: float = math.inf

    @property
    def has_basis(self) -> bool:
        """Whether the indicator can rest on more than one basis (the progress then says which)."""
        return self.flow is not None or self.derivation == "prefer"


_DAY = 86400
_M = 1_000_000


def _count(mid: str, description: str, max_value: float, **kw: object) -> Metric:
    return Metric(mid, "count", Kind.GAUGE, description, max_value, integer=True, **kw)  # type: ignore[arg-type]


_K = 1_000
_STAT = 31 * _DAY  # monthly statistics
_YEAR = 366 * _DAY

METRICS: dict[str, Metric] = {
    m.id: m
    for m in [
        _count("bs5g_total", "5G base stations in service (开通)", 10 * _M),
        _count("bs5g_built_total", "5G base stations built (建成)", 10 * _M),
        Metric(
            "bs5g_built_ytd",
            "count",
            Kind.YTD,
            "5G base stations newly built this year (新建), year to date",
            5 * _M,
            integer=True,
        ),
        _count("bs4g_total", "4G base stations", 20 * _M),
        _count("bs_mobile_total", "mobile base stations of every generation", 50 * _M),
        _count("users_5g", "5G terminal users", 3000 * _M),
        _count("gigabit_users", "gigabit broadband users", 1000 * _M),
        _count("broadband_users", "fixed broadband users", 2000 * _M),
        _count("ports_broadband", "broadband access ports, all", 3000 * _M),
        _count("ports_ftth", "broadband access ports, FTTH/O", 3000 * _M),
        _count("ports_10gpon", "broadband access ports, 10G-PON", 1000 * _M),
        Metric("fibre_km", "km", Kind.GAUGE, "optical cable length", 1e8),
        Metric("egress_bandwidth_gbps", "Gbps", Kind.GAUGE, "inter-provincial egress bandwidth (省际出口带宽)", 1e7),
        _count("ipv6_active_users", "IPv6 active users", 3000 * _M),
        _count("iot_terminals_mobile", "mobile (cellular) IoT terminals", 10_000 * _M),
        _count("iot_connections_pan", "pan-IoT connections, all access types", 20_000 * _M),
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
        _count("dc_racks", "standard racks (a data centre as entity, or a region total)", 100 * _M),
        Metric("dc_compute_pflops", "PFLOPS", Kind.GAUGE, "computing power (算力)", 1e7),
        _count("dc_count", "data centres in operation (a region figure)", 100 * _K),
        Metric(
            "bs5g_energy_kwh",
            "kWh",
            Kind.DELTA,
            "energy used by the operator's 5G base stations in the interval",
            1e11,
            cadence_s=_DAY,
        ),
        _count("townships", "townships (乡镇)", 100 * _K),
        _count("townships_5g", "townships with 5G coverage", 100 * _K),
        _count("villages", "administrative villages (行政村)", 1 * _M),
        _count("villages_5g", "administrative villages with 5G coverage", 1 * _M),
        Metric(
            "iir_resolutions_total",
            "count",
            Kind.COUNTER,
            "cumulative industrial-internet identifier resolutions (标识累计解析量)",
            1e14,
            integer=True,
        ),
        Metric(
            "enterprises_cloud_ytd",
            "count",
            Kind.YTD,
            "enterprises newly moved onto the cloud this year (上云企业)",
            10 * _M,
            integer=True,
        ),
        _count(
            "programme_count",
            "items of a designated programme (entity = programme id)",
            1 * _M,
            entity_required=True,
            admin_only=True,
            cadence_s=_YEAR,
        ),
        Metric(
            "milestone",
            "0/1",
            Kind.GAUGE,
            "a dated milestone reached (entity = milestone id)",
            1,
            integer=True,
            entity_required=True,
            admin_only=True,
            cadence_s=_YEAR,
            physical_max=1,
        ),
        Metric(
            "gigabit_city",
            "0/1",
            Kind.GAUGE,
            "the city holds the national gigabit-city designation",
            1,
            integer=True,
            admin_only=True,
            cadence_s=_YEAR,
            physical_max=1,
        ),
        Metric(
            "population",
            "persons",
            Kind.GAUGE,
            "resident population (reference series)",
            2e9,
            integer=True,
            admin_only=True,
            cadence_s=_YEAR,
        ),
    ]
}

DERIVED_INDICATORS: dict[str, Indicator] = {
    i.id: i
    for i in [
        Indicator(
            "bs5g_new",
            "count",
            "5G base stations newly built within the period: reported year-to-date builds where the scope has"
            " them, else the increase of the stock in service",
            "increase",
            ("bs5g_total", "bs5g_built_ytd"),
            flow="bs5g_built_ytd",
            physical_min=-math.inf,
        ),
        Indicator(
            "bs5g_net_new",
            "count",
            "net addition of 5G base stations in service within the period (新增): the increase of the stock",
            "increase",
            ("bs5g_total",),
            physical_min=-math.inf,
        ),
        Indicator(
            "bs5g_built",
            "count",
            "5G base stations built (建成): the built stock where the scope reports it, else the stock in service",
            "prefer",
            ("bs5g_built_total", "bs5g_total"),
        ),
        Indicator(
            "iir_resolutions",
            "count",
            "cumulative industrial-internet identifier resolutions (标识累计解析量): the registers' latest readings",
            "level",
            ("iir_resolutions_total",),
        ),
        Indicator(
            "users_5g_new",
            "count",
            "5G terminal users added within the period",
            "increase",
            ("users_5g",),
            physical_min=-math.inf,
        ),
        Indicator(
            "enterprises_cloud_new",
            "count",
            "enterprises newly moved onto the cloud within the period (from the year-to-date figures)",
            "increase",
            ("enterprises_cloud_ytd",),
        ),
        Indicator(
            "ipv6_share_mobile",
            "%",
            "IPv6 share of mobile traffic (ratio of sums)",
            "ratio",
            ("ipv6_traffic_mobile_gb", "traffic_mobile_gb"),
            scale=100.0,
            physical_max=100.0,
        ),
        Indicator(
            "ipv6_share_fixed",
            "%",
            "IPv6 share of fixed traffic (ratio of sums)",
            "ratio",
            ("ipv6_traffic_fixed_gb", "traffic_fixed_gb"),
            scale=100.0,
            physical_max=100.0,
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
            "bs5g_per_10k",
            "per 10k",
            "5G base stations in service per 10,000 residents",
            "ratio",
            ("bs5g_total", "population"),
            scale=10_000.0,
        ),
        Indicator(
            "township_5g_coverage",
            "%",
            "share of townships with 5G coverage (ratio of sums)",
            "ratio",
            ("townships_5g", "townships"),
            scale=100.0,
            physical_max=100.0,
        ),
        Indicator(
            "village_5g_coverage",
            "%",
            "share of administrative villages with 5G coverage (ratio of sums)",
            "ratio",
            ("villages_5g", "villages"),
            scale=100.0,
            physical_max=100.0,
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
    **{
        m.id: Indicator(
            m.id,
            m.unit,
            m.description,
            "metric",
            (m.id,),
            kind=m.kind,
            physical_min=m.physical_min,
            physical_max=m.physical_max,
        )
        for m in METRICS.values()
    },
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
