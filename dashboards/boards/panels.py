"""The pieces every board shares, built with grafana-foundation-sdk: the dashboard frame, panels placed on the
provisioned datasource, SQL targets, the catalogue's variables, links, thresholds, colours and units.

A board module composes these; none writes a dashboard, a variable or a field override by hand.
"""

from __future__ import annotations

import json
import string
import textwrap
from typing import Literal, TypeVar

from grafana_foundation_sdk.builders import barchart, bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as builder_common
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from core.planzone import plan_tz_name
from dashboards.grafana import GRID_COLUMNS, Json, SqlTarget, datasource_ref, dedent_sql
from reference.catalogue import DERIVED_INDICATORS, INDICATORS, METRICS
from reference.regions import NATION, PROVINCE, REGIONS, children, provinces, region_name

#: The tag of every infrawatch board (their links list the boards by it).
TAG = "infrawatch"

#: Target status → (text shown, colour); the statuses of docs/interface.md §8.
STATUS_COLORS: dict[str, tuple[str, str]] = {
    "achieved": ("achieved", "green"),
    "on_track": ("on track", "semi-dark-green"),
    "at_risk": ("at risk", "orange"),
    "off_track": ("off track", "red"),
    "missed": ("missed", "dark-red"),
    "no_data": ("no data", "text"),
}

#: Grafana unit ids for the catalogue's units.
GRAFANA_UNITS: dict[str, str] = {
    "count": "short",
    "GB": "decgbytes",
    "kWh": "kwatth",
    "%": "percent",
    "ratio": "none",
    "GB/kWh": "none",
    "0/1": "none",
    "persons": "short",
}

#: The cities of the default province, the parts of the contribution and data-centre boards.
PROVINCE_CITIES = f"SELECT code FROM iw_region WHERE level = 'city' AND parent = {PROVINCE}"


def unit_of(indicator_id: str) -> str:
    """Grafana's unit id for an indicator of the catalogue."""
    return GRAFANA_UNITS.get(INDICATORS[indicator_id].unit, "none")


def indicator_options() -> list[tuple[str, str]]:
    """(text, value) of every indicator in the catalogue, derived ones first (the plans are written in them)."""
    derived = [(f"{i.id} ({i.unit})", i.id) for i in DERIVED_INDICATORS.values()]
    pushed = [(f"{m.id} ({m.unit})", m.id) for m in METRICS.values()]
    return derived + pushed


def region_options() -> list[tuple[str, str]]:
    """The region picker over the hierarchy: the nation, every province, and the default province's
    cities each followed by its counties (indented by level)."""
    indent = {"nation": "", "province": "", "city": "· ", "county": "· · "}
    codes = [NATION, *provinces()]
    for city in children(PROVINCE):
        codes.extend([city, *children(city)])
    seen: list[int] = list(dict.fromkeys(codes))
    return [(indent[REGIONS[c].level] + region_name(c), str(c)) for c in seen]


# -- the dashboard ----------------------------------------------------------------------------------------


def new_board(
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    *,
    time_from: str = "now-1y",
    refresh: str = "5m",
) -> builder.Dashboard:
    """A board in the plans' time zone, with the crosshair shared, the built-in annotations and the links
    to the other infrawatch boards; panels are laid out left to right, top to bottom."""
    annotations = (
        builder.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(model.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )
    return (
        builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *tags])
        .timezone(plan_tz_name())  # INFRAWATCH_TIMEZONE when the boards are generated
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .fiscal_year_start_month(0)
        .live_now(False)
        .refresh(refresh)
        .version(1)
        .time(time_from, "now")
        .timepicker(builder.TimePicker().hidden(False).refresh_intervals(["1m", "5m", "15m", "1h"]))
        .variables([])  # an empty list, not none: Grafana and dashboards.check read templating.list
        .annotation(annotations)
        .link(
            builder.DashboardLink("infrawatch boards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .icon("external link")
            .tooltip("")
            .tags([TAG])
            .as_dropdown(True)
            .target_blank(False)
            .include_vars(False)
            .keep_time(True)
        )
    )


def board_json(board: builder.Dashboard) -> Json:
    """The board as Grafana's dashboard JSON, its panels numbered in layout order (rows included)."""
    dashboard = board.build()
    panel_id = 0
    for panel in dashboard.panels or []:
        panel_id += 1
        panel.id_val = panel_id
        if isinstance(panel, model.RowPanel):
            for inner in panel.panels:
                panel_id += 1
                inner.id_val = panel_id
        grid = panel.grid_pos
        if grid is not None and grid.x + grid.w > GRID_COLUMNS:
            raise ValueError(f"panel {panel.title!r} ends at column {grid.x + grid.w}; the grid has {GRID_COLUMNS}")
    out: Json = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return out


def row(title: str) -> builder.Row:
    """A (non-collapsible) row header across the whole width."""
    return builder.Row(title).collapsed(False)


# -- panels -----------------------------------------------------------------------------------------------

P = TypeVar("P", timeseries.Panel, table.Panel, stat.Panel, bargauge.Panel, barchart.Panel)


def _placed(panel: P, title: str, targets: tuple[SqlTarget, ...], width: int, height: int, description: str) -> P:
    panel.title(title).datasource(datasource_ref()).span(width).height(height)
    for ref_id, target in zip(string.ascii_uppercase, targets, strict=False):
        panel.with_target(target.ref_id(ref_id))
    if description:
        panel.description(description)
    return panel


def timeseries_panel(
    title: str, *targets: SqlTarget, width: int = 12, height: int = 8, description: str = ""
) -> timeseries.Panel:
    """A time series panel; its targets must be `sql(…).time_series()`."""
    return _placed(timeseries.Panel(), title, targets, width, height, description)


def table_panel(
    title: str, *targets: SqlTarget, width: int = 12, height: int = 8, description: str = ""
) -> table.Panel:
    return _placed(table.Panel(), title, targets, width, height, description)


def stat_panel(title: str, *targets: SqlTarget, width: int = 12, height: int = 8, description: str = "") -> stat.Panel:
    """Big values, one per numeric column of the last row, each with its name."""
    panel = _placed(stat.Panel(), title, targets, width, height, description)
    return (
        panel.reduce_options(last_value(values=False))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
    )


def bargauge_panel(
    title: str, *targets: SqlTarget, width: int = 12, height: int = 8, description: str = ""
) -> bargauge.Panel:
    """Horizontal bars, one per row (label column, value column)."""
    panel = _placed(bargauge.Panel(), title, targets, width, height, description)
    return (
        panel.reduce_options(last_value(values=True))
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .show_unfilled(True)
    )


def barchart_panel(
    title: str, *targets: SqlTarget, width: int = 12, height: int = 8, description: str = ""
) -> barchart.Panel:
    return _placed(barchart.Panel(), title, targets, width, height, description)


def sql(text: str) -> SqlTarget:
    """A raw-SQL target against the provisioned datasource (refIds are given in the panel's order)."""
    return SqlTarget(text)


def nested(query: str, prefix: str = "") -> str:
    """SQL without its common indentation, each line after `prefix`: a query to nest in another one."""
    return textwrap.indent(dedent_sql(query), prefix)


def last_value(*, values: bool) -> builder_common.ReduceDataOptions:
    """Reduce each field to its last non-null value (`values`: one value per row instead)."""
    return builder_common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(values)


def legend(placement: common.LegendPlacement = common.LegendPlacement.BOTTOM) -> builder_common.VizLegendOptions:
    """A visible legend: a list below the chart, or a table on the right with each series' last value."""
    if placement == common.LegendPlacement.RIGHT:
        return (
            builder_common.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(placement)
            .calcs(["lastNotNull"])
            .show_legend(True)
        )
    return (
        builder_common.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(placement)
        .show_legend(True)
    )


def stacked(mode: common.StackingMode = common.StackingMode.NORMAL) -> builder_common.StackingConfig:
    return builder_common.StackingConfig().mode(mode)


def line_style(fill: Literal["dash", "dot"], dash: list[float]) -> model.DynamicConfigValue:
    """An override drawing a series dashed or dotted: `dash` alternates the lengths of strokes and gaps."""
    return model.DynamicConfigValue(
        id_val="custom.lineStyle", value=builder_common.LineStyle().fill(fill).dash(dash).build()
    )


# -- field configuration ---------------------------------------------------------------------------------


def thresholds(*steps: tuple[float | None, str]) -> builder.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (Grafana's -Infinity base)."""
    return (
        builder.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def value_colors(mapping: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """A value mapping: each text value → (display text, colour)."""
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(mapping.items())
            }
        )
    ]


def cell_colors(*, background: bool = True) -> model.DynamicConfigValue:
    """Table cells coloured by their value's colour (threshold or mapping): the background, or the text only."""
    cells: common.TableCellOptions = (
        common.TableColoredBackgroundCellOptions() if background else common.TableColorTextCellOptions()
    )
    return model.DynamicConfigValue(id_val="custom.cellOptions", value=cells)


def colored_cells(mapping: dict[str, tuple[str, str]], *, background: bool = True) -> list[model.DynamicConfigValue]:
    """A table column of text values shown in their mapped colour (cell background, or the text only)."""
    return [
        model.DynamicConfigValue(id_val="mappings", value=value_colors(mapping)),
        cell_colors(background=background),
    ]


def percent_gauge() -> list[model.DynamicConfigValue]:
    """A table column of percentages (0–100) drawn as a gauge in its cell."""
    return [
        model.DynamicConfigValue(id_val="unit", value="percent"),
        model.DynamicConfigValue(
            id_val="custom.cellOptions", value=common.TableBarGaugeCellOptions(mode=common.BarGaugeDisplayMode.BASIC)
        ),
        model.DynamicConfigValue(id_val="max", value=100),
    ]


def fixed_color(color: str) -> model.DynamicConfigValue:
    """An override giving a series one colour."""
    return model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})


def color_scheme(mode: model.FieldColorModeId) -> builder.FieldColor:
    return builder.FieldColor().mode(mode)


def transformation(transform_id: str, options: Json) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=transform_id, options=options)


def matrix(column: str, row_field: str, value: str) -> model.DataTransformerConfig:
    """Grafana's grouping-to-matrix transformation: one row per `row_field`, one column per `column`."""
    return transformation("groupingToMatrix", {"columnField": column, "rowField": row_field, "valueField": value})


# -- variables -------------------------------------------------------------------------------------------


def custom_variable(
    name: str,
    label: str,
    options: list[tuple[str, str]],
    *,
    current: str | None = None,
    description: str = "",
) -> builder.CustomVariable:
    """A variable whose options are fixed by the generator: (text, value) pairs, e.g. from the catalogue."""
    if not options:
        raise ValueError(f"variable {name!r} needs at least one option")
    chosen = current if current is not None else options[0][1]
    text = next((t for t, v in options if v == chosen), chosen)
    variable = (
        builder.CustomVariable(name)
        .label(label)
        # Grafana's custom-variable syntax: `text : value` pairs separated by commas.
        .values(", ".join(f"{t} : {v}" for t, v in options))
        .current(model.VariableOption(text=text, value=chosen, selected=True))
        .options([model.VariableOption(text=t, value=v, selected=v == chosen) for t, v in options])
        .multi(False)
        .include_all(False)
        .hide(model.VariableHide.DONT_HIDE)
    )
    return variable.description(description) if description else variable


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    include_all: bool = False,
    description: str = "",
) -> builder.QueryVariable:
    """A variable whose options come from SQL (`__text`/`__value` columns, or one column for both)."""
    current = (
        model.VariableOption(text="All", value="$__all") if include_all else model.VariableOption(text="", value="")
    )
    variable = (
        builder.QueryVariable(name)
        .label(label)
        .datasource(datasource_ref())
        .query(dedent_sql(query))
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.DISABLED)
        .multi(multi)
        .include_all(include_all)
        .current(current)
        .options([])
        .hide(model.VariableHide.DONT_HIDE)
        .regex("")
    )
    return variable.description(description) if description else variable


def indicator_variable(default: str = "bs5g_total") -> builder.CustomVariable:
    return custom_variable(
        "indicator",
        "Indicator",
        indicator_options(),
        current=default,
        description="Indicators of docs/interface.md §2 and §3",
    )


def interval_variable() -> builder.CustomVariable:
    return custom_variable(
        "interval",
        "Bucket",
        [("day", "1d"), ("month", "1mo")],
        current="1mo",
        description="Rollup bucket (days or months in the plans' time zone)",
    )


def region_variable() -> builder.CustomVariable:
    return custom_variable("region", "Region", region_options(), current=str(PROVINCE))


def operator_variable() -> builder.QueryVariable:
    return query_variable(
        "operator",
        "Operator",
        "SELECT name || ' ' || name_zh AS __text, id AS __value FROM operator WHERE id <> 'all'"
        " ORDER BY (id = 'admin'), builtin DESC, id",
        multi=True,
        include_all=True,
    )
