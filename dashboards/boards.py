"""The infrawatch Grafana boards, generated from the indicator catalogue, the regions and the plan targets.

Queries read what the metrics layer publishes (target, target_progress, iw_target_expected(), the series
function iw_indicator_series() the API reads too, indicator_rollup, feed_freshness) and the alerting and ingest records (alert, ingest_batch, the
iw_rejection view of quarantine, the iw_reported_total view of reported totals); they never recompute
indicators from raw observations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from dashboards.grafana import (
    Board,
    Json,
    Panel,
    custom_variable,
    dashboard_link,
    query,
    query_variable,
    thresholds,
    value_colors,
)
from reference.catalogue import DERIVED_INDICATORS, INDICATORS, METRICS
from reference.regions import NATION, PROVINCE, REGIONS, children, provinces, region_name

TAG = "infrawatch"
FRESHNESS_STALE_FACTOR = 2  # metrics.freshness.is_stale: stale when older than twice the cadence
UNKNOWN_METRIC_CADENCE_S = 86400  # metrics.freshness: cadence of a metric missing from the catalogue
DEFAULT_PUE_GOAL = 1.5  # domain.md: Ganzhou's data-centre PUE goal (< 1.5)

#: Target status → (text shown, colour); the statuses of docs/interface.md §8.
STATUS_COLORS: dict[str, tuple[str, str]] = {
    "achieved": ("achieved", "green"),
    "on_track": ("on track", "semi-dark-green"),
    "at_risk": ("at risk", "orange"),
    "off_track": ("off track", "red"),
    "missed": ("missed", "dark-red"),
    "no_data": ("no data", "text"),
}
#: Worst first: the progress chart opens on the target most in trouble.
STATUS_RANK = ("off_track", "missed", "at_risk", "on_track", "achieved", "no_data")
SEVERITY_COLORS: dict[str, tuple[str, str]] = {
    "critical": ("critical", "red"),
    "warning": ("warning", "orange"),
    "info": ("info", "blue"),
}
ALERT_STATE_COLORS: dict[str, tuple[str, str]] = {
    "firing": ("firing", "red"),
    "pending": ("pending", "orange"),
    "resolved": ("resolved", "green"),
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

CITY_FILTER = "SELECT code FROM iw_region WHERE level = 'city'"


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


def pue_goal(targets_file: Path | None = None) -> float:
    """The PUE goal of the shipped plan targets (the data-centre board's target line)."""
    path = targets_file or Path(__file__).resolve().parent.parent / "metrics" / "default_targets.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        return DEFAULT_PUE_GOAL
    for target in data.get("targets", []):
        if target.get("indicator") == "dc_pue" and isinstance(target.get("goal"), int | float):
            return float(target["goal"])
    return DEFAULT_PUE_GOAL


def _percent_gauge(column: str) -> Json:
    """A table column of percentages (0–100) drawn as a gauge in its cell."""
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [
            {"id": "unit", "value": "percent"},
            {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic"}},
            {"id": "max", "value": 100},
        ],
    }


def _links() -> list[Json]:
    return [dashboard_link("infrawatch boards", TAG)]


def _indicator_variable(default: str = "bs5g_total") -> Json:
    return custom_variable(
        "indicator",
        "Indicator",
        indicator_options(),
        current=default,
        description="Indicators of docs/interface.md §2 and §3",
    )


def _interval_variable() -> Json:
    return custom_variable(
        "interval",
        "Bucket",
        [("day", "1d"), ("month", "1mo")],
        current="1mo",
        description="Rollup bucket (days or months in the plans' time zone)",
    )


def _region_variable() -> Json:
    return custom_variable("region", "Region", region_options(), current=str(PROVINCE))


def _operator_variable() -> Json:
    return query_variable(
        "operator",
        "Operator",
        "SELECT name || ' ' || name_zh AS __text, id AS __value FROM operator WHERE id <> 'all'"
        " ORDER BY (id = 'admin'), builtin DESC, id",
        multi=True,
        include_all=True,
    )


# -- 1. Plan targets ------------------------------------------------------------------------------------


def plan_targets_board() -> Json:
    b = Board(
        uid="iw-plan-targets",
        title="Plan targets",
        description="Every active plan target: where it stands today, what was expected by now, where it is heading.",
        tags=[TAG, "targets"],
        time_from="now-1y",
        links=_links(),
    )
    status_rank = "CASE p.status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATUS_RANK)) + " ELSE 9 END"
    b.variables.append(
        query_variable(
            "target",
            "Target",
            f"""
            SELECT t.title AS __text, t.id AS __value
            FROM target t LEFT JOIN target_progress p ON p.target_id = t.id
            WHERE t.active
            ORDER BY {status_rank}, t.deadline DESC, t.id
            """,
            description="The target whose trajectory the progress chart shows (worst status first)",
        )
    )
    counts = ",\n".join(
        f"    count(*) FILTER (WHERE p.status = '{s}') AS \"{text}\"" for s, (text, _) in STATUS_COLORS.items()
    )
    b.add(
        Panel(
            "stat",
            "Targets by status",
            [query(f"SELECT\n{counts}\nFROM target t JOIN target_progress p ON p.target_id = t.id\nWHERE t.active")],
            width=24,
            height=4,
            color_mode="fixed",
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background",
                "graphMode": "none",
                "textMode": "value_and_name",
                "justifyMode": "auto",
                "orientation": "horizontal",
            },
            overrides=[
                {
                    "matcher": {"id": "byName", "options": text},
                    "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
                }
                for text, color in STATUS_COLORS.values()
            ],
        )
    )
    b.add(
        Panel(
            "table",
            "Active targets",
            [
                query(
                    """
                    SELECT t.title AS "Target", p.status AS "Status", p.actual AS "Actual", t.comparator AS "Rule",
                           p.goal AS "Goal", p.expected AS "Expected by today", p.projected AS "Projected at deadline",
                           p.gap AS "Gap", p.unit AS "Unit", p.deadline AS "Deadline", t.source AS "Source",
                           p.as_of AS "As of", t.id AS "Id"
                    FROM target t JOIN target_progress p ON p.target_id = t.id
                    WHERE t.active
                    ORDER BY p.deadline DESC, t.id
                    """
                )
            ],
            width=24,
            height=12,
            description="One row per active target (docs/interface.md §8). Expected = baseline + (goal − baseline) × elapsed "
            "fraction; projected = the 90-day trend carried to the deadline.",
            decimals=2,
            options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Status"},
                    "properties": [
                        {"id": "mappings", "value": value_colors(STATUS_COLORS)},
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "Target"},
                    "properties": [{"id": "custom.width", "value": 360}],
                },
            ],
        )
    )
    b.row("Trajectory of ${target}")
    b.add(
        Panel(
            "timeseries",
            "Actual vs expected trajectory",
            [
                query(
                    """
                    SELECT s.ts AS "time", s.value AS "actual"
                    FROM target t
                    CROSS JOIN LATERAL iw_indicator_series(
                        t.indicator, t.region, coalesce(t.operator, ''),
                        t.start_date::timestamp AT TIME ZONE iw_plan_tz(), $__timeTo(), '1d',
                        coalesce(t.entity, '')) s
                    WHERE t.id = '$target' AND s.value IS NOT NULL AND $__timeFilter(s.ts)
                    ORDER BY 1
                    """,
                    fmt="time_series",
                ),
                query(
                    """
                    SELECT d AS "time", iw_target_expected(t.id, d) AS "expected", p.goal AS "goal"
                    FROM target t
                    LEFT JOIN target_progress p ON p.target_id = t.id
                    CROSS JOIN LATERAL generate_series(
                        greatest(t.start_date::timestamp AT TIME ZONE iw_plan_tz(), $__timeFrom()::timestamptz),
                        least((t.deadline + 1)::timestamp AT TIME ZONE iw_plan_tz(), $__timeTo()::timestamptz),
                        interval '1 day') AS d
                    WHERE t.id = '$target'
                    ORDER BY 1
                    """,
                    ref_id="B",
                    fmt="time_series",
                ),
            ],
            width=16,
            height=10,
            description="Actual: the indicator per day as GET /v1/series gives it from the target's start "
            "(iw_indicator_series; increase targets cumulated since the start). "
            "Expected: the planned trajectory from iw_target_expected(); goal: the target's goal.",
            custom={"lineWidth": 2, "fillOpacity": 0, "spanNulls": True, "showPoints": "never"},
            color_mode="palette-classic",
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "expected"},
                    "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
                },
                {
                    "matcher": {"id": "byName", "options": "goal"},
                    "properties": [
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                        {"id": "custom.lineStyle", "value": {"fill": "dot", "dash": [2, 6]}},
                    ],
                },
            ],
            options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        )
    )
    b.add(
        Panel(
            "table",
            "Who lags on ${target}",
            [
                query(
                    """
                    SELECT kind AS "Lagging", l->>'name' AS "Name", (l->>'actual')::float8 AS "Actual",
                           100 * (l->>'share_of_shortfall')::float8 AS "Share of shortfall"
                    FROM target_progress p
                    CROSS JOIN LATERAL (
                        SELECT 'city' AS kind, e AS l FROM jsonb_array_elements(p.laggards->'cities') e
                        UNION ALL
                        SELECT 'operator', e FROM jsonb_array_elements(p.laggards->'operators') e
                    ) x
                    WHERE p.target_id = '$target'
                    ORDER BY 4 DESC NULLS LAST
                    """
                )
            ],
            width=8,
            height=10,
            description="The cities and operators contributing most to the shortfall against expected.",
            decimals=1,
            overrides=[_percent_gauge("Share of shortfall")],
        )
    )
    return b.to_json()


# -- 2. Indicator explorer --------------------------------------------------------------------------------


def indicator_explorer_board() -> Json:
    b = Board(
        uid="iw-indicator-explorer",
        title="Indicator explorer",
        description="Any indicator of the catalogue for any region and operators, with the city × operator breakdown.",
        tags=[TAG, "indicators"],
        time_from="now-2y",
        links=_links(),
        variables=[_indicator_variable(), _region_variable(), _operator_variable(), _interval_variable()],
    )
    b.add(
        Panel(
            "timeseries",
            "${indicator} in the region, all operators",
            [
                query(
                    """
                    SELECT s.ts AS "time", s.value AS "${indicator}"
                    FROM iw_indicator_series('$indicator', $region, '', $__timeFrom(), $__timeTo(), '$interval') s
                    WHERE s.value IS NOT NULL
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            width=12,
            height=9,
            description="As GET /v1/series gives it for the time range (iw_indicator_series): increases cumulated "
            "since the first bucket, the buckets still pending rollup included.",
            custom={"lineWidth": 2, "fillOpacity": 10, "showPoints": "auto"},
        )
    )
    b.add(
        Panel(
            "timeseries",
            "${indicator} by operator",
            [
                query(
                    """
                    SELECT s.ts AS "time", o.id AS "metric", s.value AS "value"
                    FROM operator o
                    CROSS JOIN LATERAL iw_indicator_series(
                        '$indicator', $region, o.id, $__timeFrom(), $__timeTo(), '$interval') s
                    WHERE o.id IN ($operator) AND s.value IS NOT NULL
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            width=12,
            height=9,
            custom={"lineWidth": 1, "fillOpacity": 0, "showPoints": "auto"},
        )
    )
    b.add(
        Panel(
            "table",
            "City × operator, latest value in the time range",
            [
                query(
                    """
                    SELECT g.name AS "City",
                           CASE WHEN o.id = '' THEN 'all operators' ELSE o.id END AS "Operator",
                           v.value AS "Value"
                    FROM iw_region g
                    CROSS JOIN (SELECT ''::text AS id UNION ALL SELECT id FROM operator WHERE id IN ($operator)) o
                    CROSS JOIN LATERAL (
                        SELECT s.value
                        FROM iw_indicator_series('$indicator', g.code, o.id, $__timeFrom(), $__timeTo(), '$interval') s
                        WHERE s.value IS NOT NULL
                        ORDER BY s.ts DESC LIMIT 1) v
                    WHERE g.level = 'city' AND (g.code = $region OR g.parent = $region)
                    ORDER BY g.code, o.id
                    """
                )
            ],
            width=24,
            height=12,
            description="One row per city, one column per operator (and all operators together).",
            decimals=2,
            transformations=[
                {
                    "id": "groupingToMatrix",
                    "options": {"columnField": "Operator", "rowField": "City", "valueField": "Value"},
                }
            ],
        )
    )
    b.add(
        Panel(
            "table",
            "Reconciliation: reported totals beside the sum of their parts",
            [
                query(
                    """
                    WITH reported AS (
                        SELECT DISTINCT ON (t.region) t.region, t.ts, t.value
                        FROM iw_reported_total t
                        WHERE t.metric = '$indicator' AND $__timeFilter(t.ts)
                          AND t.region IN (SELECT code FROM iw_region WHERE code = $region OR parent = $region)
                        ORDER BY t.region, t.ts DESC
                    )
                    SELECT g.name AS "Region", rep.ts AS "As of", rep.value AS "Reported",
                           sum(r.value) AS "Sum of parts", rep.value - sum(r.value) AS "Gap",
                           count(r.value) || ' of ' || (SELECT count(*) FROM iw_region c WHERE c.parent = rep.region)
                               AS "Coverage"
                    FROM reported rep
                    JOIN iw_region g ON g.code = rep.region
                    LEFT JOIN indicator_rollup r
                      ON r.interval = '1mo' AND r.indicator = '$indicator' AND r.operator = '' AND r.entity = ''
                     AND r.region IN (SELECT code FROM iw_region c WHERE c.parent = rep.region)
                     AND r.bucket = date_trunc('month', rep.ts AT TIME ZONE iw_plan_tz()) AT TIME ZONE iw_plan_tz()
                    GROUP BY g.name, rep.region, rep.ts, rep.value
                    ORDER BY abs(rep.value - coalesce(sum(r.value), rep.value)) DESC, rep.region
                    """
                )
            ],
            width=24,
            height=8,
            description=(
                "For a gauge: each reported total (all operators, or the administration's series) of the region and"
                " its children, latest in the time range, beside the month's sum of its children; the reported"
                " figure is the one used. GET /v1/reconciliation gives every axis and kind."
            ),
            decimals=0,
        )
    )
    return b.to_json()


# -- 3. Cities and 4. Operators ------------------------------------------------------------------------


def _contribution_board(by: str) -> Json:
    """Who contributes and who lags: the cities of the province, or the operators in a region."""
    if by == "city":
        uid, title, tag = "iw-cities", "Cities", "cities"
        name_sql = "g.name"
        join = "JOIN iw_region g ON g.code = r.region"
        where = f"r.region IN ({CITY_FILTER}) AND r.operator = ''"
        total_where = f"t.region = {PROVINCE} AND t.operator = ''"
        variables = [_indicator_variable(), _interval_variable()]
        laggards_key = "cities"
    else:
        uid, title, tag = "iw-operators", "Operators", "operators"
        name_sql = "o.name || ' ' || o.name_zh"
        join = "JOIN operator o ON o.id = r.operator"
        where = "r.region = $region AND r.operator <> ''"
        total_where = "t.region = r.region AND t.operator = ''"
        variables = [_indicator_variable(), _region_variable(), _interval_variable()]
        laggards_key = "operators"
    b = Board(
        uid=uid,
        title=title,
        description=f"Which {tag} contribute to each indicator and which lag behind the plan targets.",
        tags=[TAG, tag],
        time_from="now-2y",
        links=_links(),
        variables=variables,
    )
    from_sql = f"FROM indicator_rollup r {join}"
    where_sql = f"WHERE r.interval = '$interval' AND r.indicator = '$indicator' AND r.entity = '' AND {where}"
    latest_sql = """AND r.bucket = (SELECT max(bucket) FROM indicator_rollup
                                  WHERE interval = '$interval' AND indicator = '$indicator' AND entity = ''
                                    AND $__timeFilter(bucket))"""
    b.add(
        Panel(
            "bargauge",
            f"${{indicator}} by {by}, latest bucket in the time range",
            [
                query(
                    f"""
                    SELECT {name_sql} AS "{by}", r.value AS "value"
                    {from_sql}
                    {where_sql}
                      {latest_sql}
                    ORDER BY r.value DESC
                    """
                )
            ],
            width=10,
            height=12,
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                "orientation": "horizontal",
                "displayMode": "gradient",
                "showUnfilled": True,
            },
            color_mode="continuous-BlPu",
        )
    )
    b.add(
        Panel(
            "timeseries",
            f"${{indicator}} per {by}",
            [
                query(
                    f"""
                    SELECT r.bucket AS "time", {name_sql} AS "metric", r.value AS "value"
                    {from_sql}
                    {where_sql}
                      AND $__timeFilter(r.bucket)
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            width=14,
            height=12,
            custom={"lineWidth": 1, "fillOpacity": 0, "showPoints": "auto"},
            options={
                "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"], "showLegend": True}
            },
        )
    )
    b.add(
        Panel(
            "table",
            f"Share of the total per {by}, latest bucket",
            [
                query(
                    f"""
                    SELECT {name_sql} AS "{by}", r.value AS "Value", t.value AS "Total",
                           100 * r.value / nullif(t.value, 0) AS "Share"
                    {from_sql}
                    LEFT JOIN indicator_rollup t
                      ON t.interval = r.interval AND t.indicator = r.indicator AND t.bucket = r.bucket
                     AND t.entity = '' AND {total_where}
                    {where_sql}
                      {latest_sql}
                    ORDER BY 4 DESC NULLS LAST
                    """
                )
            ],
            width=12,
            height=10,
            description="For counts and volumes the share of the total; for ratios (shares, PUE) compare values only.",
            decimals=2,
            overrides=[_percent_gauge("Share")],
        )
    )
    b.add(
        Panel(
            "table",
            f"{title} lagging behind plan targets",
            [
                query(
                    f"""
                    SELECT t.title AS "Target", p.status AS "Status", l->>'name' AS "{by}",
                           (l->>'actual')::float8 AS "Actual",
                           100 * (l->>'share_of_shortfall')::float8 AS "Share of shortfall"
                    FROM target t
                    JOIN target_progress p ON p.target_id = t.id
                    CROSS JOIN LATERAL jsonb_array_elements(p.laggards->'{laggards_key}') l
                    WHERE t.active
                    ORDER BY 5 DESC NULLS LAST, 1
                    """
                )
            ],
            width=12,
            height=10,
            description=f"For each active target, the {tag} contributing most to its shortfall against expected.",
            decimals=1,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Status"},
                    "properties": [
                        {"id": "mappings", "value": value_colors(STATUS_COLORS)},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "Share of shortfall"},
                    "properties": [{"id": "unit", "value": "percent"}],
                },
            ],
        )
    )
    return b.to_json()


def cities_board() -> Json:
    return _contribution_board("city")


def operators_board() -> Json:
    return _contribution_board("operator")


# -- 5. Data centres ------------------------------------------------------------------------------------


def data_centres_board() -> Json:
    goal = pue_goal()
    b = Board(
        uid="iw-data-centres",
        title="Data centres",
        description="PUE (Σ facility energy / Σ IT energy) per data centre and per city, energy, and the PUE target.",
        tags=[TAG, "data-centres"],
        time_from="now-90d",
        links=_links(),
    )
    pue_thresholds = thresholds((None, "green"), (goal, "red"))
    line = {"thresholdsStyle": {"mode": "line+area"}, "lineWidth": 1, "fillOpacity": 0, "showPoints": "auto"}
    b.add(
        Panel(
            "timeseries",
            "Daily PUE of the 10 data centres with the highest PUE",
            [
                query(
                    f"""
                    WITH worst AS (
                        SELECT r.entity FROM indicator_rollup r
                        WHERE r.interval = '1d' AND r.indicator = 'dc_pue' AND r.entity <> ''
                          AND r.region IN ({CITY_FILTER})
                          AND $__timeFilter(r.bucket)
                        GROUP BY r.entity ORDER BY avg(r.value) DESC, r.entity LIMIT 10
                    )
                    SELECT r.bucket AS "time", r.entity AS "metric", r.value AS "value"
                    FROM indicator_rollup r JOIN worst USING (entity)
                    WHERE r.interval = '1d' AND r.indicator = 'dc_pue'
                      AND r.region IN ({CITY_FILTER})
                      AND $__timeFilter(r.bucket)
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            width=12,
            height=10,
            description=(
                f"The ten with the highest mean daily PUE in the time range (every centre's last day is in the table "
                f"below). The red band starts at the PUE target {goal} (Ganzhou plan 003, (四)2)."
            ),
            unit="none",
            decimals=2,
            thresholds=pue_thresholds,
            custom=line,
        )
    )
    b.add(
        Panel(
            "timeseries",
            "Daily PUE per city",
            [
                query(
                    """
                    SELECT r.bucket AS "time", g.name AS "metric", r.value AS "value"
                    FROM indicator_rollup r JOIN iw_region g ON g.code = r.region
                    WHERE r.interval = '1d' AND r.indicator = 'dc_pue' AND r.entity = '' AND r.operator = ''
                      AND $__timeFilter(r.bucket)
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            width=12,
            height=10,
            description="A region's PUE is Σ facility energy / Σ IT energy over its data centres, never a mean of PUEs.",
            unit="none",
            decimals=2,
            thresholds=pue_thresholds,
            custom=line,
        )
    )
    b.add(
        Panel(
            "table",
            "Data centres, PUE of the last day in the time range",
            [
                query(
                    f"""
                    SELECT DISTINCT ON (r.entity) r.entity AS "Data centre", g.name AS "City",
                           r.operator AS "Operator", r.bucket AS "Day", r.value AS "PUE"
                    FROM indicator_rollup r JOIN iw_region g ON g.code = r.region
                    WHERE r.interval = '1d' AND r.indicator = 'dc_pue' AND r.entity <> ''
                      AND r.region IN ({CITY_FILTER})
                      AND $__timeFilter(r.bucket)
                    ORDER BY r.entity, r.bucket DESC
                    """
                )
            ],
            width=10,
            height=10,
            decimals=3,
            thresholds=pue_thresholds,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "PUE"},
                    "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}],
                }
            ],
        )
    )
    b.add(
        Panel(
            "timeseries",
            "Data-centre energy per day, province",
            [
                query(
                    f"""
                    SELECT r.bucket AS "time",
                           CASE r.indicator WHEN 'dc_energy_total_kwh' THEN 'facility' ELSE 'IT equipment' END AS "metric",
                           r.value AS "value"
                    FROM indicator_rollup r
                    WHERE r.interval = '1d' AND r.indicator IN ('dc_energy_total_kwh', 'dc_energy_it_kwh')
                      AND r.region = {PROVINCE} AND r.operator = '' AND r.entity = ''
                      AND $__timeFilter(r.bucket)
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            width=14,
            height=10,
            description="Counter increases per day (meter resets handled by the metrics layer).",
            unit="kwatth",
            custom={"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1, "stacking": {"mode": "none"}},
        )
    )
    return b.to_json()


# -- 6. Alerts -------------------------------------------------------------------------------------------


def alerts_board() -> Json:
    b = Board(
        uid="iw-alerts",
        title="Alerts",
        description="Firing alerts and the recent ones, acknowledged or not (docs/interface.md §9).",
        tags=[TAG, "alerts"],
        time_from="now-30d",
        refresh="1m",
        links=_links(),
    )
    b.add(
        Panel(
            "stat",
            "Now",
            [
                query(
                    """
                    SELECT count(*) FILTER (WHERE state = 'firing') AS "firing",
                           count(*) FILTER (WHERE state = 'firing' AND acknowledged_at IS NULL) AS "not acknowledged",
                           count(*) FILTER (WHERE state = 'firing' AND severity = 'critical') AS "critical",
                           count(*) FILTER (WHERE state = 'pending') AS "pending"
                    FROM alert
                    """
                )
            ],
            width=24,
            height=4,
            thresholds=thresholds((None, "green"), (1, "red")),
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background",
                "graphMode": "none",
                "textMode": "value_and_name",
            },
        )
    )
    columns = """
        a.severity AS "Severity", a.kind AS "Kind", a.rule_id AS "Rule", a.summary AS "Summary",
        a.value AS "Value", a.scope::text AS "Scope", a.started_at AS "Since", a.fired_at AS "Fired",
        a.acknowledged_at IS NOT NULL AS "Acknowledged", a.acknowledged_by AS "By"
    """.strip()
    severity_override = {
        "matcher": {"id": "byName", "options": "Severity"},
        "properties": [
            {"id": "mappings", "value": value_colors(SEVERITY_COLORS)},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        ],
    }
    b.add(
        Panel(
            "table",
            "Firing",
            [
                query(
                    f"""
                    SELECT {columns}
                    FROM alert a
                    WHERE a.state = 'firing'
                    ORDER BY (a.acknowledged_at IS NOT NULL), a.fired_at DESC
                    """
                )
            ],
            width=24,
            height=9,
            description="Unacknowledged alerts first.",
            overrides=[severity_override],
        )
    )
    b.add(
        Panel(
            "table",
            "Recent (started, fired or resolved in the time range)",
            [
                query(
                    f"""
                    SELECT a.state AS "State", {columns}, a.resolved_at AS "Resolved"
                    FROM alert a
                    WHERE $__timeFilter(a.started_at) OR $__timeFilter(a.fired_at) OR $__timeFilter(a.resolved_at)
                    ORDER BY coalesce(a.resolved_at, a.fired_at, a.started_at) DESC
                    LIMIT 500
                    """
                )
            ],
            width=24,
            height=10,
            overrides=[
                severity_override,
                {
                    "matcher": {"id": "byName", "options": "State"},
                    "properties": [
                        {"id": "mappings", "value": value_colors(ALERT_STATE_COLORS)},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                },
            ],
        )
    )
    b.add(
        Panel(
            "timeseries",
            "Alerts fired per day, by kind",
            [
                query(
                    """
                    SELECT $__timeGroupAlias(a.fired_at, '1d'), a.kind AS "metric", count(*) AS "value"
                    FROM alert a
                    WHERE a.fired_at IS NOT NULL AND $__timeFilter(a.fired_at)
                    GROUP BY 1, 2
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            width=24,
            height=8,
            custom={"drawStyle": "bars", "fillOpacity": 70, "stacking": {"mode": "normal"}},
        )
    )
    return b.to_json()


# -- 7. Feeds --------------------------------------------------------------------------------------------


def _cadence_values() -> str:
    return ", ".join(f"('{m.id}', {m.cadence_s})" for m in METRICS.values())


def feeds_board() -> Json:
    b = Board(
        uid="iw-feeds",
        title="Feeds",
        description="Are operators' feeds fresh, how much arrives, and what is rejected and why.",
        tags=[TAG, "feeds"],
        time_from="now-7d",
        refresh="1m",
        links=_links(),
    )
    freshness = f"""
        WITH cadence(metric, cadence_s) AS (VALUES {_cadence_values()}),
        feed AS (
            SELECT f.operator, f.metric, max(f.last_ts) AS last_ts, max(f.last_received_at) AS last_received_at,
                   count(*) AS regions,
                   extract(epoch FROM now() - max(f.last_ts)) AS age_s,
                   coalesce(c.cadence_s, {UNKNOWN_METRIC_CADENCE_S}) AS cadence_s
            FROM feed_freshness f LEFT JOIN cadence c ON c.metric = f.metric
            GROUP BY f.operator, f.metric, c.cadence_s
        )
    """
    b.add(
        Panel(
            "table",
            "Freshness per operator and metric",
            [
                query(
                    f"""
                    {freshness.strip()}
                    SELECT operator AS "Operator", metric AS "Metric", last_ts AS "Last observation",
                           last_received_at AS "Last received", age_s AS "Age", cadence_s AS "Cadence",
                           CASE WHEN age_s > {FRESHNESS_STALE_FACTOR} * cadence_s THEN 'stale' ELSE 'fresh' END AS "State",
                           regions AS "Regions"
                    FROM feed
                    ORDER BY (age_s <= {FRESHNESS_STALE_FACTOR} * cadence_s), operator, metric
                    """
                )
            ],
            width=14,
            height=12,
            description=f"A feed is stale when its newest observation is older than {FRESHNESS_STALE_FACTOR}× the "
            "metric's cadence (metrics.freshness).",
            overrides=[
                {"matcher": {"id": "byName", "options": "Age"}, "properties": [{"id": "unit", "value": "s"}]},
                {"matcher": {"id": "byName", "options": "Cadence"}, "properties": [{"id": "unit", "value": "s"}]},
                {
                    "matcher": {"id": "byName", "options": "State"},
                    "properties": [
                        {
                            "id": "mappings",
                            "value": value_colors({"stale": ("stale", "red"), "fresh": ("fresh", "green")}),
                        },
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    ],
                },
            ],
        )
    )
    b.add(
        Panel(
            "table",
            "Age of the newest observation (hours), operator × metric",
            [
                query(
                    f"""
                    {freshness.strip()}
                    SELECT operator AS "Operator", metric AS "Metric", round((age_s / 3600)::numeric, 1) AS "Age (h)"
                    FROM feed
                    ORDER BY operator, metric
                    """
                )
            ],
            width=10,
            height=12,
            transformations=[
                {
                    "id": "groupingToMatrix",
                    "options": {"columnField": "Metric", "rowField": "Operator", "valueField": "Age (h)"},
                }
            ],
            thresholds=thresholds((None, "green"), (48, "orange"), (24 * 62, "red")),
            options={"cellHeight": "sm"},
            custom={"cellOptions": {"type": "color-text"}},
        )
    )
    b.add(
        Panel(
            "timeseries",
            "Observations received per interval, by operator",
            [
                query(
                    """
                    SELECT $__timeGroupAlias(b.received_at, $__interval),
                           coalesce(b.operator, 'several') AS "metric",
                           sum(b.accepted + b.duplicates + b.revised + b.rejected) AS "value"
                    FROM ingest_batch b
                    WHERE $__timeFilter(b.received_at)
                    GROUP BY 1, 2
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            width=12,
            height=9,
            custom={"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}},
        )
    )
    b.add(
        Panel(
            "timeseries",
            "Accepted, duplicate, revised and rejected per interval",
            [
                query(
                    """
                    SELECT $__timeGroupAlias(b.received_at, $__interval),
                           sum(b.accepted) AS "accepted", sum(b.duplicates) AS "duplicates",
                           sum(b.revised) AS "revised", sum(b.rejected) AS "rejected"
                    FROM ingest_batch b
                    WHERE $__timeFilter(b.received_at)
                    GROUP BY 1
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            width=12,
            height=9,
            custom={"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "rejected"},
                    "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}],
                }
            ],
        )
    )
    b.add(
        Panel(
            "barchart",
            "Rejections by reason",
            [
                query(
                    """
                    SELECT q.reason AS "Reason", count(*) AS "Rejections"
                    FROM iw_rejection q
                    WHERE $__timeFilter(q.received_at)
                    GROUP BY q.reason
                    ORDER BY 2 DESC
                    LIMIT 15
                    """
                )
            ],
            width=12,
            height=10,
            options={
                "orientation": "horizontal",
                "xField": "Reason",
                "showValue": "auto",
                "legend": {"showLegend": False},
            },
        )
    )
    b.add(
        Panel(
            "table",
            "Rejected share per operator in the time range",
            [
                query(
                    """
                    SELECT coalesce(b.operator, 'several') AS "Operator",
                           sum(b.accepted + b.duplicates + b.revised + b.rejected) AS "Received",
                           sum(b.rejected) AS "Rejected",
                           100.0 * sum(b.rejected) / nullif(sum(b.accepted + b.duplicates + b.revised + b.rejected), 0)
                               AS "Rejected share"
                    FROM ingest_batch b
                    WHERE $__timeFilter(b.received_at)
                    GROUP BY 1
                    ORDER BY 4 DESC NULLS LAST
                    """
                )
            ],
            width=12,
            height=10,
            decimals=2,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Rejected share"},
                    "properties": [
                        {"id": "unit", "value": "percent"},
                        {"id": "thresholds", "value": thresholds((None, "green"), (1, "orange"), (5, "red"))},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                }
            ],
        )
    )
    return b.to_json()


#: file stem → builder; the provisioned JSON is dashboards/provisioning/dashboards/<stem>.json.
BOARDS: dict[str, Callable[[], Json]] = {
    "plan-targets": plan_targets_board,
    "indicator-explorer": indicator_explorer_board,
    "cities": cities_board,
    "operators": operators_board,
    "data-centres": data_centres_board,
    "alerts": alerts_board,
    "feeds": feeds_board,
}


def all_boards() -> dict[str, Json]:
    """Every board, freshly generated."""
    return {stem: build() for stem, build in BOARDS.items()}


def unit_of(indicator_id: str) -> str:
    """Grafana's unit id for an indicator of the catalogue."""
    return GRAFANA_UNITS.get(INDICATORS[indicator_id].unit, "none")


__all__ = ["BOARDS", "STATUS_COLORS", "all_boards", "indicator_options", "pue_goal", "unit_of"]
