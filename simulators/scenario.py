"""The scenario model: what a simulated province looks like, loaded and checked from a YAML file.

A scenario names operators and cities (with weights and pace factors), the statistics each operator
reports and how they grow toward the plan targets, traffic with its IPv6 share, data centres with
their meters, the administration's reference series, the faults to inject, and what the monitoring
should conclude from it (`expect`). `extends: other-scenario` starts from another file and overrides.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reference.catalogue import METRICS, Kind
from reference.operators import ADMIN_OPERATOR, is_valid_entity_id, is_valid_operator_id
from reference.regions import CITIES, PROVINCE
from simulators.timeline import Cadence, parse_cadence

SCENARIO_DIR = Path(__file__).parent / "scenarios"

#: Resident population of each city in 10,000s (2020 census): the default weights for splitting
#: province figures across cities.
CENSUS_2020: dict[int, float] = {
    360100: 625.5,
    360200: 162.1,
    360300: 180.5,
    360400: 460.0,
    360500: 120.2,
    360600: 115.4,
    360700: 897.0,
    360800: 446.9,
    360900: 500.8,
    361000: 361.5,
    361100: 649.1,
}

FAULT_KINDS = (
    "gap",
    "duplicate",
    "out_of_order",
    "late",
    "revision",
    "malformed",
    "future_ts",
    "foreign_operator",
    "counter_reset",
)


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message says what to fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class City(_Model):
    weight: float = Field(gt=0, description="share of province figures (e.g. population)")
    pace: float = Field(default=1.0, ge=0, description="growth speed relative to plan (1 = on plan)")


class OperatorSpec(_Model):
    pace: float = Field(default=1.0, ge=0)


class TargetLink(_Model):
    """The plan target a series is designed against: the province reaches `reach` × goal at the deadline."""

    id: str
    goal: float
    reach: float = Field(gt=0)
    #: level: the value itself; increase: the increase within the plan year; share: percent of traffic.
    measure: Literal["level", "increase", "share"] = "level"


class Gauge(_Model):
    operators: dict[str, float] = Field(description="operator → share of the province figure")
    cadence: str = "monthly"
    start: float = Field(ge=0, description="province value at the start of the plan year")
    end: float | None = Field(default=None, ge=0, description="province value at its end (or give target)")
    target: TargetLink | None = None
    #: "linear" or twelve monthly weights of the year's growth (e.g. construction heavier late in the year).
    profile: Literal["linear"] | list[float] = "linear"
    noise: float = Field(default=0.003, ge=0, description="relative noise on each series' growth")

    @model_validator(mode="after")
    def _end_or_target(self) -> Gauge:
        if (self.end is None) == (self.target is None):
            raise ValueError("give exactly one of `end` (province value at the plan year's end) or `target`")
        if self.target and self.target.measure == "share":
            raise ValueError("a gauge's target measure is level or increase")
        if isinstance(self.profile, list) and (len(self.profile) != 12 or min(self.profile) < 0):
            raise ValueError("profile must be 'linear' or twelve non-negative monthly weights")
        return self

    def province_end(self) -> float:
        if self.end is not None:
            return self.end
        assert self.target is not None
        goal = self.target.goal * self.target.reach
        return self.start + goal if self.target.measure == "increase" else goal


class Ipv6Share(_Model):
    start: float = Field(ge=0, le=100, description="percent at the start of the plan year")
    #: operators that start elsewhere (percent), e.g. one far behind
    start_by_operator: dict[str, float] = Field(default_factory=dict)
    end: float | None = Field(default=None, ge=0, le=100)
    target: TargetLink | None = None

    @model_validator(mode="after")
    def _end_or_target(self) -> Ipv6Share:
        if (self.end is None) == (self.target is None):
            raise ValueError("give exactly one of `end` (percent at the plan year's end) or `target`")
        return self

    def province_end(self) -> float:
        if self.end is not None:
            return self.end
        assert self.target is not None
        return self.target.goal * self.target.reach


class Traffic(_Model):
    total_metric: str
    ipv6_metric: str
    operators: dict[str, float]
    cadence: str = "daily"
    volume_gb_per_day: float = Field(gt=0, description="province total per day at the start of the plan year")
    growth_per_year: float = 0.15
    weekend_uplift: float = Field(default=0.06, description="weekend days carry this much more traffic")
    noise: float = Field(default=0.03, ge=0)
    ipv6_share: Ipv6Share


class BaseStationEnergy(_Model):
    metric: str = "bs5g_energy_kwh"
    stations_metric: str = "bs5g_total"
    cadence: str = "daily"
    kwh_per_station_day: float = Field(default=80.0, gt=0)
    saving_per_year: float = Field(default=0.08, ge=0, lt=1)
    noise: float = Field(default=0.02, ge=0)


class Population(_Model):
    value: int = Field(gt=0)
    region: int = PROVINCE
    cadence: str = "monthly"


class GigabitCities(_Model):
    cadence: str = "monthly"
    #: city → date from which it holds the designation; cities not listed report 0.
    designated: dict[int, date] = Field(default_factory=dict)


class Admin(_Model):
    population: Population | None = None
    gigabit_city: GigabitCities | None = None


class DataCentre(_Model):
    id: str
    operator: str
    city: int
    it_load_kw: float = Field(gt=0)
    pue: float = Field(ge=1.0, description="annual mean PUE")
    pue_summer: float = Field(default=0.05, ge=0, description="amplitude of the summer rise of PUE")
    it_growth_per_year: float = 0.05
    meter_start_kwh: float | None = Field(default=None, ge=0)


class SyntheticDataCentres(_Model):
    count: int = Field(ge=1)
    operators: list[str]
    it_load_kw: tuple[float, float] = (300.0, 3000.0)
    pue: tuple[float, float] = (1.2, 1.6)
    prefix: str = "dc"


class DataCentres(_Model):
    cadence: str = "5m"
    total_metric: str = "dc_energy_total_kwh"
    it_metric: str = "dc_energy_it_kwh"
    sites: list[DataCentre] = Field(default_factory=list)
    synthetic: SyntheticDataCentres | None = None


class BaseStationMeters(_Model):
    """Per-site 5G base-station energy (delta per interval), for throughput work."""

    count: int = Field(ge=1)
    operators: list[str]
    cadence: str = "5m"
    kwh_per_hour: tuple[float, float] = (2.5, 4.5)
    metric: str = "bs5g_energy_kwh"
    prefix: str = "bs"


class Faults(_Model):
    """Rate per observation of each fault kind (counter_reset: per meter reading)."""

    gap: float = Field(default=0.0, ge=0, le=1)
    duplicate: float = Field(default=0.0, ge=0, le=1)
    out_of_order: float = Field(default=0.0, ge=0, le=1)
    late: float = Field(default=0.0, ge=0, le=1)
    revision: float = Field(default=0.0, ge=0, le=1)
    malformed: float = Field(default=0.0, ge=0, le=1)
    future_ts: float = Field(default=0.0, ge=0, le=1)
    foreign_operator: float = Field(default=0.0, ge=0, le=1)
    counter_reset: float = Field(default=0.0, ge=0, le=1)
    #: How late a late observation arrives (seconds, drawn uniformly in this range).
    late_delay_s: tuple[int, int] = (3600, 3 * 86400)
    #: How far into the future a future_ts observation is dated.
    future_shift_days: int = 3650

    def rates(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in FAULT_KINDS}

    @property
    def any(self) -> bool:
        return any(v > 0 for v in self.rates().values())


class Expect(_Model):
    """What `infrawatch status --as-of` should show for this scenario (for tests and demos)."""

    as_of: date
    statuses: dict[str, str | list[str]] = Field(default_factory=dict)
    lagging_operator: str | None = None
    lagging_city: int | None = None
    hot_data_centres: list[str] = Field(default_factory=list)


class Scenario(_Model):
    name: str
    description: str = ""
    timezone: str = "Asia/Shanghai"
    start: date | str
    end: date | str
    plan_year: int
    seed: int = 0
    cities: dict[int, City] = Field(default_factory=lambda: {c: City(weight=w) for c, w in CENSUS_2020.items()})
    operators: dict[str, OperatorSpec] = Field(default_factory=dict)
    gauges: dict[str, Gauge] = Field(default_factory=dict)
    traffic: list[Traffic] = Field(default_factory=list)
    base_station_energy: BaseStationEnergy | None = None
    admin: Admin = Field(default_factory=Admin)
    data_centres: DataCentres | None = None
    base_station_meters: BaseStationMeters | None = None
    faults: Faults = Field(default_factory=Faults)
    expect: Expect | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)") from None
        return v

    @field_validator("cities")
    @classmethod
    def _cities(cls, v: dict[int, City]) -> dict[int, City]:
        bad = sorted(c for c in v if c not in CITIES)
        if bad:
            raise ValueError(f"not a Jiangxi city code: {bad}; use 360100 … 361100")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        for op in self.operators:
            if not is_valid_operator_id(op) or op == ADMIN_OPERATOR:
                raise ValueError(f"operator id {op!r} must match [a-z][a-z0-9_]{{1,31}} and not be 'admin'")
        for metric_id, g in self.gauges.items():
            _check_metric(metric_id, Kind.GAUGE)
            parse_cadence(g.cadence)
            self._check_shares(f"gauges.{metric_id}", g.operators)
        for t in self.traffic:
            _check_metric(t.total_metric, Kind.DELTA)
            _check_metric(t.ipv6_metric, Kind.DELTA)
            parse_cadence(t.cadence)
            self._check_shares(f"traffic {t.total_metric}", t.operators)
        if self.base_station_energy:
            _check_metric(self.base_station_energy.metric, Kind.DELTA)
            if self.base_station_energy.stations_metric not in self.gauges:
                raise ValueError("base_station_energy.stations_metric must name one of the gauges")
        if self.data_centres:
            dc = self.data_centres
            cad = parse_cadence(dc.cadence)
            if cad.kind != "every" or 86400 % cad.seconds:
                raise ValueError("data_centres.cadence must divide a day (e.g. 5m, 15m, 1h)")
            _check_metric(dc.total_metric, Kind.COUNTER)
            _check_metric(dc.it_metric, Kind.COUNTER)
            ids = [s.id for s in dc.sites]
            if len(set(ids)) != len(ids):
                raise ValueError("data centre ids must be unique")
            for s in dc.sites:
                if not is_valid_entity_id(s.id) or not s.id:
                    raise ValueError(f"data centre id {s.id!r} must match [A-Za-z0-9_.:-]{{1,64}}")
                if s.city not in CITIES:
                    raise ValueError(f"data centre {s.id}: city {s.city} is not a Jiangxi city code")
                self._check_operator(f"data centre {s.id}", s.operator)
            if dc.synthetic:
                for op in dc.synthetic.operators:
                    self._check_operator("data_centres.synthetic", op)
        if self.base_station_meters:
            cad = parse_cadence(self.base_station_meters.cadence)
            for op in self.base_station_meters.operators:
                self._check_operator("base_station_meters", op)
        if self.admin.gigabit_city:
            bad = sorted(c for c in self.admin.gigabit_city.designated if c not in CITIES)
            if bad:
                raise ValueError(f"admin.gigabit_city: not a city code: {bad}")
        return self

    def _check_shares(self, where: str, shares: dict[str, float]) -> None:
        for op, share in shares.items():
            self._check_operator(where, op)
            if share < 0:
                raise ValueError(f"{where}: share of {op} is negative")
        if not any(shares.get(op, 0) > 0 for op in self.operators):
            raise ValueError(f"{where}: no operator of the scenario has a positive share")

    def _check_operator(self, where: str, op: str) -> None:
        if op not in self.operators:
            raise ValueError(f"{where}: operator {op!r} is not listed under `operators`")

    # -- conveniences -------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def cadence_of(self, text: str) -> Cadence:
        return parse_cadence(text)

    def all_operators(self) -> list[str]:
        """Operators that send data, the administration included when it has reference series."""
        ops = sorted(self.operators)
        if self.admin.population or self.admin.gigabit_city:
            ops.append(ADMIN_OPERATOR)
        return ops


def _check_metric(metric_id: str, kind: Kind) -> None:
    m = METRICS.get(metric_id)
    if m is None:
        raise ValueError(f"unknown metric {metric_id!r}; known: {', '.join(sorted(METRICS))}")
    if m.kind != kind:
        raise ValueError(f"metric {metric_id} is a {m.kind}, not a {kind}")


def scenario_path(name_or_file: str | Path) -> Path:
    """A shipped scenario by name (e.g. jiangxi-2023) or a YAML file path."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ScenarioError(f"scenario file {p} does not exist")
        return p
    shipped = SCENARIO_DIR / f"{name_or_file}.yaml"
    if shipped.exists():
        return shipped
    names = ", ".join(sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml")))
    raise ScenarioError(f"no scenario named {name_or_file!r}; shipped: {names}; or give a path to a YAML file")


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ScenarioError(f"scenario {path} extends itself (through {', '.join(map(str, seen))})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path} must hold a mapping (name, start, end, operators, …)")
    parent = data.pop("extends", None)
    if parent:
        base_path = scenario_path(parent) if not (path.parent / str(parent)).exists() else path.parent / str(parent)
        data = _deep_merge(_raw(base_path, (*seen, path.resolve())), data)
    return data


def load_scenario(name_or_file: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and check a scenario; errors say which field is wrong."""
    path = scenario_path(name_or_file)
    data = _raw(path)
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'scenario'}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"scenario {path.name} is not valid: {problems}") from None
