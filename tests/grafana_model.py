"""Grafana's dashboard JSON model (grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/),
written down as the fields and types a provisioned dashboard may carry, so boards are checked without a copied schema."""

from __future__ import annotations

from typing import Any

DASHBOARD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": (int, type(None)),
    "uid": str,
    "title": str,
    "description": str,
    "tags": list,
    "style": str,
    "timezone": str,
    "editable": bool,
    "graphTooltip": int,
    "time": dict,
    "timepicker": dict,
    "templating": dict,
    "annotations": dict,
    "refresh": (str, bool),
    "schemaVersion": int,
    "version": int,
    "panels": list,
    "links": list,
    "fiscalYearStartMonth": int,
    "liveNow": bool,
    "weekStart": str,
    "gnetId": (int, type(None)),
}
DASHBOARD_REQUIRED = {"uid", "title", "schemaVersion", "panels", "time", "templating"}

PANEL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "type": str,
    "title": str,
    "description": str,
    "gridPos": dict,
    "datasource": (dict, type(None)),
    "targets": list,
    "fieldConfig": dict,
    "options": dict,
    "transformations": list,
    "transparent": bool,
    "pluginVersion": str,
    "interval": str,
    "maxDataPoints": int,
    "timeFrom": str,
    "timeShift": str,
    "repeat": str,
    "repeatDirection": str,
    "maxPerRow": int,
    "links": list,
    "collapsed": bool,
    "panels": list,
    "libraryPanel": dict,
    "hideTimeOverride": bool,
    "cacheTimeout": str,
    "queryCachingTTL": int,
}
PANEL_REQUIRED = {"id", "type", "gridPos"}
GRID_FIELDS = {"h", "w", "x", "y", "static"}
TARGET_REQUIRED = {"refId"}


def model_problems(board: dict[str, Any]) -> list[str]:
    """Every way `board` departs from Grafana's dashboard model (empty when it conforms)."""
    problems: list[str] = []

    def check(where: str, obj: dict[str, Any], fields: dict[str, Any], required: set[str]) -> None:
        for name in sorted(required - obj.keys()):
            problems.append(f"{where}: missing {name}")
        for name, value in obj.items():
            if name not in fields:
                problems.append(f"{where}: unknown field {name!r}")
            elif not isinstance(value, fields[name]) or (fields[name] is int and isinstance(value, bool)):
                problems.append(f"{where}: {name} has type {type(value).__name__}")

    check("dashboard", board, DASHBOARD_FIELDS, DASHBOARD_REQUIRED)
    for var in board.get("templating", {}).get("list", []):
        for name in ("name", "type"):
            if name not in var:
                problems.append(f"variable {var.get('name', '?')}: missing {name}")
    panels = list(board.get("panels", []))
    for panel in list(panels):
        panels.extend(panel.get("panels", []))
    for panel in panels:
        where = f"panel {panel.get('id', '?')} {panel.get('title', '')!r}"
        check(where, panel, PANEL_FIELDS, PANEL_REQUIRED)
        grid = panel.get("gridPos", {})
        for key in ("h", "w", "x", "y"):
            if not isinstance(grid.get(key), int):
                problems.append(f"{where}: gridPos.{key} is not a whole number")
        problems.extend(f"{where}: gridPos has unknown field {k!r}" for k in grid.keys() - GRID_FIELDS)
        for target in panel.get("targets", []):
            problems.extend(f"{where}: a target lacks {k}" for k in TARGET_REQUIRED - target.keys())
    return problems
