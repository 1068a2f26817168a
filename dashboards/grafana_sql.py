"""Expand a panel's raw SQL the way Grafana does before it reaches PostgreSQL.

Two steps, as in Grafana: the frontend substitutes template variables (`$var`, `${var}`, `[[var]]`,
`$__interval`, `$__interval_ms`) with the SQL datasource's quoting rule, then the backend's PostgreSQL
macro engine expands `$__time…` macros for the time range. Used to check every board's queries
against a real database (tests, `infrawatch dashboards check`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_INTERVAL_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
#: Grafana's macro call: $__name(args) (args without a closing parenthesis), as in its macros.go.
_MACRO_RE = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
_VARIABLE_RE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's current selection: one value, or several for multi-value/All."""

    name: str
    value: str | Sequence[str]
    multi: bool = False
    include_all: bool = False


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    max_data_points: int = 1000
    variables: Mapping[str, Variable] = field(default_factory=dict)


def parse_interval(text: str) -> timedelta:
    """Grafana's interval syntax ('5m', '1h', '1d', '30s')."""
    m = _INTERVAL_RE.match(text.strip().strip("'"))
    if not m:
        raise MacroError(f"cannot parse interval {text!r}; use forms like 30s, 5m, 1h, 1d")
    return timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])


#: Grafana's rounding of the auto interval (rangeutil.roundInterval), as (upper bound ms, result).
_ROUNDING: tuple[tuple[float, str], ...] = (
    (15, "10ms"),
    (35, "20ms"),
    (75, "50ms"),
    (150, "100ms"),
    (350, "200ms"),
    (750, "500ms"),
    (1500, "1s"),
    (3500, "2s"),
    (7500, "5s"),
    (12500, "10s"),
    (17500, "15s"),
    (25000, "20s"),
    (45000, "30s"),
    (90000, "1m"),
    (210000, "2m"),
    (450000, "5m"),
    (750000, "10m"),
    (1050000, "15m"),
    (1500000, "20m"),
    (2700000, "30m"),
    (5400000, "1h"),
    (9000000, "2h"),
    (16200000, "3h"),
    (24300000, "6h"),
    (64800000, "12h"),
    (129600000, "1d"),
    (604800000, "1w"),
    (3024000000, "30d"),
)


def auto_interval(start: datetime, end: datetime, max_data_points: int = 1000) -> str:
    """$__interval as Grafana computes it: the range over the panel's data points, rounded."""
    ms = (end - start).total_seconds() * 1000 / max(1, max_data_points)
    for bound, label in _ROUNDING:
        if ms < bound:
            return label
    return "1y"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def format_variable(variable: Variable) -> str:
    """The SQL datasource's interpolateVariable: multi-value or include-All variables become a quoted,
    comma-separated list; a single-value variable is substituted raw with quotes doubled."""
    value = variable.value
    if isinstance(value, str):
        if variable.multi or variable.include_all:
            return _quote(value)
        return value.replace("'", "''")
    return ",".join(_quote(v) for v in value)


def substitute_variables(sql: str, time_range: TimeRange) -> str:
    """Frontend step: replace template variables and $__interval / $__interval_ms."""
    interval = auto_interval(time_range.start, time_range.end, time_range.max_data_points)
    builtins = {
        "__interval": interval,
        "__interval_ms": str(int(parse_interval(interval).total_seconds() * 1000)),
        "__from": str(int(time_range.start.timestamp() * 1000)),
        "__to": str(int(time_range.end.timestamp() * 1000)),
    }

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name in builtins:
            return builtins[name]
        var = time_range.variables.get(name)
        if var is None:
            return m.group(0)  # not a variable (e.g. a macro name); Grafana leaves it alone
        return format_variable(var)

    return _VARIABLE_RE.sub(repl, sql)


def _rfc3339(dt: datetime) -> str:
    s = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return s + "Z"


def expand_macros(sql: str, time_range: TimeRange, *, timescaledb: bool = False) -> str:
    """Backend step: Grafana's PostgreSQL macro engine (pkg/tsdb/grafana-postgresql-datasource/macros.go)."""
    start, end = _rfc3339(time_range.start), _rfc3339(time_range.end)

    def group(args: list[str]) -> str:
        if len(args) < 2:
            raise MacroError("$__timeGroup needs a time column and an interval")
        seconds = parse_interval(args[1]).total_seconds()
        if timescaledb:
            return f"time_bucket('{seconds:.3f}s',{args[0]})"
        n = int(seconds) if seconds == math.floor(seconds) else seconds
        return f"floor(extract(epoch from {args[0]})/{n})*{n}"

    def evaluate(name: str, args: list[str]) -> str:
        if name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter") and not args[0]:
            raise MacroError(f"missing time column argument for macro ${name}")
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{start}' AND '{end}'"
        if name == "__timeFrom":
            return f"'{start}'"
        if name == "__timeTo":
            return f"'{end}'"
        if name == "__timeGroup":
            return group(args)
        if name == "__timeGroupAlias":
            return group(args) + ' AS "time"'
        if name == "__unixEpochFilter":
            return (
                f"{args[0]} >= {int(time_range.start.timestamp())} AND {args[0]} <= {int(time_range.end.timestamp())}"
            )
        raise MacroError(f"unknown macro ${name}")

    def repl(m: re.Match[str]) -> str:
        args = [a.strip() for a in m.group(2).split(",")]
        return evaluate(m.group(1), args)

    return _MACRO_RE.sub(repl, sql)


def expand(sql: str, time_range: TimeRange, *, timescaledb: bool = False) -> str:
    """A panel's rawSql as PostgreSQL receives it from Grafana."""
    return expand_macros(substitute_variables(sql, time_range), time_range, timescaledb=timescaledb)


def variables_used(sql: str) -> set[str]:
    """Names of the template variables a query refers to (not macros or Grafana's built-ins)."""
    names = {m.group(1) or m.group(2) or m.group(4) for m in _VARIABLE_RE.finditer(_MACRO_RE.sub("", sql))}
    return {n for n in names if not n.startswith("__")}
