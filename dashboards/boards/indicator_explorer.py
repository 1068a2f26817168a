"""The indicator explorer: any indicator of the catalogue for any region and operators, the city × operator
breakdown, and the reconciliation of reported totals with the sum of their parts.

Series come from iw_indicator_series() (what GET /v1/series serves); the reconciliation panel reads
reconciliation_gap, the rows metrics.reconciliation publishes (what GET /v1/reconciliation serves).
"""

from __future__ import annotations

from grafana_foundation_sdk.models import common

from dashboards.boards.panels import (
    board_json,
    indicator_variable,
    interval_variable,
    matrix,
    new_board,
    operator_variable,
    region_variable,
    sql,
    table_panel,
    timeseries_panel,
)
from dashboards.grafana import Json


def indicator_explorer_board() -> Json:
    board = (
        new_board(
            "iw-indicator-explorer",
            "Indicator explorer",
            "Any indicator of the catalogue for any region and operators, with the city × operator breakdown.",
            ["indicators"],
            time_from="now-2y",
        )
        .with_variable(indicator_variable())
        .with_variable(region_variable())
        .with_variable(operator_variable())
        .with_variable(interval_variable())
    )
    board.with_panel(
        timeseries_panel(
            "${indicator} in the region, all operators",
            sql(
                """
                SELECT s.ts AS "time", s.value AS "${indicator}"
                FROM iw_indicator_series('$indicator', $region, '', $__timeFrom(), $__timeTo(), '$interval') s
                WHERE s.value IS NOT NULL
                ORDER BY 1
                """
            ).time_series(),
            width=12,
            height=9,
            description="As GET /v1/series gives it for the time range (iw_indicator_series): increases cumulated "
            "since the first bucket, the buckets still pending rollup included.",
        )
        .line_width(2)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.AUTO)
    )
    board.with_panel(
        timeseries_panel(
            "${indicator} by operator",
            sql(
                """
                SELECT s.ts AS "time", o.id AS "metric", s.value AS "value"
                FROM operator o
                CROSS JOIN LATERAL iw_indicator_series(
                    '$indicator', $region, o.id, $__timeFrom(), $__timeTo(), '$interval') s
                WHERE o.id IN ($operator) AND s.value IS NOT NULL
                ORDER BY 1, 2
                """
            ).time_series(),
            width=12,
            height=9,
        )
        .line_width(1)
        .fill_opacity(0)
        .show_points(common.VisibilityMode.AUTO)
    )
    board.with_panel(
        table_panel(
            "City × operator, latest value in the time range",
            sql(
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
            ),
            width=24,
            height=12,
            description="One row per city, one column per operator (and all operators together).",
        )
        .decimals(2)
        .with_transformation(matrix("Operator", "City", "Value"))
    )
    board.with_panel(
        table_panel(
            "Reconciliation: reported totals beside the sum of their parts",
            sql(
                """
                SELECT g.name AS "Region", c.as_of AS "As of", c.reported AS "Reported",
                       c.derived AS "Sum of parts", c.gap AS "Gap",
                       c.parts_reporting || ' of ' || c.parts_total AS "Coverage"
                FROM reconciliation_gap c
                JOIN iw_region g ON g.code = c.region
                WHERE c.indicator = '$indicator' AND c.axis = 'regions' AND c.operator = 'all'
                  AND c.region IN (SELECT code FROM iw_region WHERE code = $region OR parent = $region)
                ORDER BY abs(c.gap) DESC, c.region, c.metric
                """
            ),
            width=24,
            height=8,
            description=(
                "Each reported total of the region and its children (all operators) beside the sum of its"
                " children, as the metrics layer last computed it (now, every rollup interval); the reported"
                " figure is the one used. GET /v1/reconciliation gives every axis and another date or period."
            ),
        ).decimals(0)
    )
    return board_json(board)
