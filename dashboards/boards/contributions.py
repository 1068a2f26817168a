"""The contribution boards, Cities and Operators: who contributes to an indicator and who lags on the plan
targets — the cities of the province, or the operators in a region.

Every value is read from the published series iw_indicator_series(), one series per part and one for the
whole, so a part shows what GET /v1/series gives for its scope (increases cumulated since the start of the
time range, the pending tail included); laggards come from target_progress.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.boards.panels import (
    PROVINCE_CITIES,
    STATUS_COLORS,
    bargauge_panel,
    board_json,
    color_scheme,
    colored_cells,
    indicator_variable,
    interval_variable,
    legend,
    nested,
    new_board,
    percent_gauge,
    region_variable,
    sql,
    table_panel,
    timeseries_panel,
)
from dashboards.grafana import Json
from reference.operators import ADMIN_WRITTEN
from reference.regions import PROVINCE

_SERIES_ARGS = "$__timeFrom(), $__timeTo(), '$interval'"


@dataclass(frozen=True)
class Breakdown:
    """How a whole splits into parts: each part's series and the whole's, as iw_indicator_series() reads them."""

    by: str  # the parts' column title: "city" or "operator"
    parts: str  # SQL of (name, ord, ts, value): each part's buckets with a value
    whole: str  # SQL of the whole's series (ts, value)
    laggards_key: str  # the key of target_progress.laggards listing these parts

    def series(self) -> str:
        """Each part's series, for a time series panel."""
        return "\n".join(
            [
                'SELECT p.ts AS "time", p.name AS "metric", p.value AS "value"',
                "FROM (",
                nested(self.parts, "    "),
                ") p",
                "ORDER BY 1, p.ord",
            ]
        )

    def at_latest(self, select: str) -> str:
        """`select` over `part p JOIN latest l`: the parts at the latest bucket any of them has a value for."""
        return "\n".join(
            [
                "WITH part AS (",
                nested(self.parts, "    "),
                "),",
                "latest AS (SELECT max(ts) AS ts FROM part)",
                nested(select),
            ]
        )


CITIES = Breakdown(
    by="city",
    parts=f"""
        SELECT g.name AS name, g.code::text AS ord, s.ts, s.value
        FROM iw_region g
        CROSS JOIN LATERAL iw_indicator_series('$indicator', g.code, '', {_SERIES_ARGS}) s
        WHERE g.code IN ({PROVINCE_CITIES}) AND s.value IS NOT NULL
        """,
    whole=f"iw_indicator_series('$indicator', {PROVINCE}, '', {_SERIES_ARGS})",
    laggards_key="cities",
)

_NOT_OPERATORS = ", ".join(f"'{op}'" for op in sorted(ADMIN_WRITTEN))
OPERATORS = Breakdown(
    by="operator",
    parts=f"""
        SELECT o.name || ' ' || o.name_zh AS name, o.id AS ord, s.ts, s.value
        FROM operator o
        CROSS JOIN LATERAL iw_indicator_series('$indicator', $region, o.id, {_SERIES_ARGS}) s
        WHERE o.id NOT IN ({_NOT_OPERATORS}) AND s.value IS NOT NULL
        """,
    whole=f"iw_indicator_series('$indicator', $region, '', {_SERIES_ARGS})",
    laggards_key="operators",
)


def contribution_board(
    breakdown: Breakdown, uid: str, title: str, tag: str, variables: list[builder.CustomVariable]
) -> Json:
    """Who contributes (latest bucket, series, share of the whole) and who lags on the targets."""
    by = breakdown.by
    board = new_board(
        uid,
        title,
        f"Which {tag} contribute to each indicator and which lag behind the plan targets.",
        [tag],
        time_from="now-2y",
    )
    for variable in variables:
        board.with_variable(variable)
    board.with_panel(
        bargauge_panel(
            f"${{indicator}} by {by}, latest bucket in the time range",
            sql(
                breakdown.at_latest(
                    f"""
                    SELECT p.name AS "{by}", p.value AS "value"
                    FROM part p JOIN latest l ON l.ts = p.ts
                    ORDER BY p.value DESC, p.ord
                    """
                )
            ),
            width=10,
            height=12,
            description="As GET /v1/series gives each one for the time range (iw_indicator_series): increases "
            "cumulated since the first bucket.",
        ).color_scheme(color_scheme(model.FieldColorModeId.CONTINUOUS_BL_PU))
    )
    board.with_panel(
        timeseries_panel(
            f"${{indicator}} per {by}",
            sql(breakdown.series()).time_series(),
            width=14,
            height=12,
        )
        .line_width(1)
        .fill_opacity(0)
        .show_points(common.VisibilityMode.AUTO)
        .legend(legend(common.LegendPlacement.RIGHT))
    )
    board.with_panel(
        table_panel(
            f"Share of the total per {by}, latest bucket",
            sql(
                breakdown.at_latest(
                    f"""
                    SELECT p.name AS "{by}", p.value AS "Value", t.value AS "Total",
                           100 * p.value / nullif(t.value, 0) AS "Share"
                    FROM part p
                    JOIN latest l ON l.ts = p.ts
                    LEFT JOIN {breakdown.whole} t ON t.ts = p.ts
                    ORDER BY 4 DESC NULLS LAST, p.ord
                    """
                )
            ),
            width=12,
            height=10,
            description="For counts and volumes the share of the total; for ratios (shares, PUE) compare values only.",
        )
        .decimals(2)
        .override_by_name("Share", percent_gauge())
    )
    board.with_panel(
        table_panel(
            f"{title} lagging behind plan targets",
            sql(
                f"""
                SELECT t.title AS "Target", p.status AS "Status", l->>'name' AS "{by}",
                       (l->>'actual')::float8 AS "Actual",
                       100 * (l->>'share_of_shortfall')::float8 AS "Share of shortfall"
                FROM target t
                JOIN target_progress p ON p.target_id = t.id
                CROSS JOIN LATERAL jsonb_array_elements(p.laggards->'{breakdown.laggards_key}') l
                WHERE t.active
                ORDER BY 5 DESC NULLS LAST, 1
                """
            ),
            width=12,
            height=10,
            description=f"For each active target, the {tag} contributing most to its shortfall against expected.",
        )
        .decimals(1)
        .override_by_name("Status", colored_cells(STATUS_COLORS, background=False))
        .override_by_name("Share of shortfall", [model.DynamicConfigValue(id_val="unit", value="percent")])
    )
    return board_json(board)


def cities_board() -> Json:
    return contribution_board(CITIES, "iw-cities", "Cities", "cities", [indicator_variable(), interval_variable()])


def operators_board() -> Json:
    return contribution_board(
        OPERATORS,
        "iw-operators",
        "Operators",
        "operators",
        [indicator_variable(), region_variable(), interval_variable()],
    )
