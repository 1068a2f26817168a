"""Small builders for Grafana's dashboard JSON model (schemaVersion 39+): panels, queries, variables.

Plain dicts, only fields Grafana's dashboard schema knows, so the generated JSON validates against it.
Every query goes to the one provisioned PostgreSQL datasource (`DATASOURCE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.planzone import plan_tz_name

#: The provisioned datasource every panel and variable uses (see dashboards/provisioning.py).
DATASOURCE_UID = "infrawatch-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE: dict[str, str] = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}

SCHEMA_VERSION = 39
GRID_COLUMNS = 24

#: Panel plugin → the query result format its SQL must produce.
TIME_SERIES_PANELS = frozenset({"timeseries"})
TABLE_PANELS = frozenset({"table", "stat", "bargauge", "barchart", "piechart", "gauge"})

Json = dict[str, Any]


def query(sql: str, *, ref_id: str = "A", fmt: str = "table") -> Json:
    """One raw-SQL target; `fmt` is Grafana's result format: 'table' or 'time_series'."""
    return {
        "refId": ref_id,
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": dedent_sql(sql),
    }


def dedent_sql(sql: str) -> str:
    """Strip the common indentation and surrounding blank lines, so the JSON reads well in Grafana."""
    lines = sql.strip("\n").splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(line[cut:].rstrip() for line in lines)


def thresholds(*steps: tuple[float | None, str]) -> Json:
    """Absolute thresholds; the first step's value is None (Grafana's -Infinity base)."""
    out = []
    for value, color in steps:
        step: Json = {"color": color, "value": value}
        out.append(step)
    return {"mode": "absolute", "steps": out}


def value_colors(mapping: dict[str, tuple[str, str]]) -> list[Json]:
    """A value mapping: each text value → (display text, colour)."""
    return [
        {
            "type": "value",
            "options": {
                value: {"text": text, "color": color, "index": i}
                for i, (value, (text, color)) in enumerate(mapping.items())
            },
        }
    ]


@dataclass
class Panel:
    """A panel before layout: Grid position is assigned by `Board.add`."""

    type: str
    title: str
    targets: list[Json]
    width: int = 12
    height: int = 8
    description: str = ""
    unit: str | None = None
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    thresholds: Json | None = None
    mappings: list[Json] | None = None
    color_mode: str | None = None
    custom: Json = field(default_factory=dict)
    options: Json = field(default_factory=dict)
    overrides: list[Json] = field(default_factory=list)
    transformations: list[Json] = field(default_factory=list)

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {"custom": dict(self.custom)}
        if self.unit is not None:
            defaults["unit"] = self.unit
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        if self.thresholds is not None:
            defaults["thresholds"] = self.thresholds
        if self.mappings is not None:
            defaults["mappings"] = self.mappings
        if self.color_mode is not None:
            defaults["color"] = {"mode": self.color_mode}
        out: Json = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "datasource": dict(DATASOURCE),
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": self.targets,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
        }
        if self.description:
            out["description"] = self.description
        if self.transformations:
            out["transformations"] = self.transformations
        return out


@dataclass
class Board:
    """A dashboard being laid out left to right, top to bottom on Grafana's 24-column grid."""

    uid: str
    title: str
    description: str
    tags: list[str]
    time_from: str = "now-1y"
    time_to: str = "now"
    refresh: str = "5m"
    variables: list[Json] = field(default_factory=list)
    links: list[Json] = field(default_factory=list)
    _panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0

    def add(self, panel: Panel) -> None:
        if panel.width > GRID_COLUMNS:
            raise ValueError(f"panel {panel.title!r} is {panel.width} columns wide; the grid has {GRID_COLUMNS}")
        if self._x + panel.width > GRID_COLUMNS:
            self.new_line()
        self._panels.append(panel.to_json(self._next_id(), self._x, self._y))
        self._x += panel.width
        self._row_height = max(self._row_height, panel.height)

    def row(self, title: str) -> None:
        """A (non-collapsible) row header across the whole width."""
        self.new_line()
        self._panels.append(
            {
                "id": self._next_id(),
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def new_line(self) -> None:
        if self._x:
            self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def _next_id(self) -> int:
        return len(self._panels) + 1

    def to_json(self) -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "timezone": plan_tz_name(),  # INFRAWATCH_TIMEZONE when the boards are generated
            "editable": True,
            "graphTooltip": 1,
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": self.time_to},
            "timepicker": {"hidden": False, "refresh_intervals": ["1m", "5m", "15m", "1h"]},
            "templating": {"list": self.variables},
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "links": self.links,
            "panels": self._panels,
        }


def custom_variable(
    name: str,
    label: str,
    options: list[tuple[str, str]],
    *,
    current: str | None = None,
    multi: bool = False,
    include_all: bool = False,
    description: str = "",
) -> Json:
    """A variable whose options are fixed by the generator: (text, value) pairs, e.g. from the catalogue."""
    if not options:
        raise ValueError(f"variable {name!r} needs at least one option")
    chosen = current if current is not None else options[0][1]
    opts = [{"text": t, "value": v, "selected": v == chosen} for t, v in options]
    text = next((t for t, v in options if v == chosen), chosen)
    out: Json = {
        "type": "custom",
        "name": name,
        "label": label,
        # Grafana's custom-variable syntax: `text : value` pairs separated by commas.
        "query": ", ".join(f"{t} : {v}" for t, v in options),
        "current": {"text": text, "value": chosen, "selected": True},
        "options": opts,
        "multi": multi,
        "includeAll": include_all,
        "hide": 0,
        "skipUrlSync": False,
    }
    if description:
        out["description"] = description
    return out


def query_variable(
    name: str,
    label: str,
    sql: str,
    *,
    multi: bool = False,
    include_all: bool = False,
    description: str = "",
) -> Json:
    """A variable whose options come from SQL (`__text`/`__value` columns, or one column for both)."""
    sql = dedent_sql(sql)
    out: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": dict(DATASOURCE),
        "query": sql,
        "definition": sql,
        "refresh": 1,
        "sort": 0,
        "multi": multi,
        "includeAll": include_all,
        "current": {"text": "All", "value": "$__all"} if include_all else {"text": "", "value": ""},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
        "regex": "",
    }
    if description:
        out["description"] = description
    return out


def dashboard_link(title: str, tag: str) -> Json:
    """Links to the other infrawatch boards (by tag), keeping the time range."""
    return {
        "title": title,
        "type": "dashboards",
        "icon": "external link",
        "tooltip": "",
        "tags": [tag],
        "asDropdown": True,
        "targetBlank": False,
        "includeVars": False,
        "keepTime": True,
    }
