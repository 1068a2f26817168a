"""The indicator explorer: any indicator of the catalogue for any region and operators, the city × operator
breakdown, and the reconciliation of reported totals with the sum of their parts.

Series come from iw_indicator_series() (what GET /v1/series serves); the reconciliation panel reads the
iw_reported_total view beside the month's rollups of the children.
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
            ),
            width=24,
            height=8,
            description=(
                "For a gauge: each reported total (all operators, or the administration's series) of the region and"
                " its children, latest in the time range, beside the month's sum of its children; the reported"
                " figure is the one used. GET /v1/reconciliation gives every axis and kind."
            ),
        ).decimals(0)
    )
    return board_json(board)
