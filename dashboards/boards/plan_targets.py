"""The plan-targets board: every active target today, the chosen target's trajectory and who lags on it.

Reads target, target_progress, iw_target_expected() and the published series iw_indicator_series() (the
trajectory shows what GET /v1/series gives for the target's scope since its start).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.boards.panels import (
    STATUS_COLORS,
    board_json,
    color_scheme,
    colored_cells,
    fixed_color,
    legend,
    line_style,
    new_board,
    percent_gauge,
    query_variable,
    row,
    sql,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from dashboards.grafana import Json

#: Worst first: the progress chart opens on the target most in trouble.
STATUS_RANK = ("off_track", "missed", "at_risk", "on_track", "achieved", "no_data")


def _target_variable() -> builder.QueryVariable:
    status_rank = "CASE p.status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATUS_RANK)) + " ELSE 9 END"
    return query_variable(
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


def plan_targets_board() -> Json:
    board = new_board(
        "iw-plan-targets",
        "Plan targets",
        "Every active plan target: where it stands today, what was expected by now, where it is heading.",
        ["targets"],
        time_from="now-1y",
    )
    board.with_variable(_target_variable())
    counts = ",\n".join(
        f"    count(*) FILTER (WHERE p.status = '{s}') AS \"{text}\"" for s, (text, _) in STATUS_COLORS.items()
    )
    by_status = (
        stat_panel(
            "Targets by status",
            sql(f"SELECT\n{counts}\nFROM target t JOIN target_progress p ON p.target_id = t.id\nWHERE t.active"),
            width=24,
            height=4,
        )
        .color_scheme(color_scheme(model.FieldColorModeId.FIXED))
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.HORIZONTAL)
    )
    for text, color in STATUS_COLORS.values():
        by_status.override_by_name(text, [fixed_color(color)])
    board.with_panel(by_status)
    board.with_panel(
        table_panel(
            "Active targets",
            sql(
                """
                SELECT t.title AS "Target", p.status AS "Status", p.actual AS "Actual", t.comparator AS "Rule",
                       p.goal AS "Goal", p.expected AS "Expected by today", p.projected AS "Projected at deadline",
                       p.gap AS "Gap", p.unit AS "Unit", p.deadline AS "Deadline", t.source AS "Source",
                       p.as_of AS "As of", t.id AS "Id"
                FROM target t JOIN target_progress p ON p.target_id = t.id
                WHERE t.active
                ORDER BY p.deadline DESC, t.id
                """
            ),
            width=24,
            height=12,
            description="One row per active target (docs/interface.md §8). Expected = baseline + (goal − baseline) × "
            "elapsed fraction; projected = the 90-day trend carried to the deadline.",
        )
        .decimals(2)
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .override_by_name("Status", colored_cells(STATUS_COLORS))
        .override_by_name("Target", [model.DynamicConfigValue(id_val="custom.width", value=360)])
    )
    board.with_row(row("Trajectory of ${target}"))
    board.with_panel(
        timeseries_panel(
            "Actual vs expected trajectory",
            sql(
                """
                SELECT s.ts AS "time", s.value AS "actual"
                FROM target t
                CROSS JOIN LATERAL iw_indicator_series(
                    t.indicator, t.region, coalesce(t.operator, ''),
                    t.start_date::timestamp AT TIME ZONE iw_plan_tz(), $__timeTo(), '1d',
                    coalesce(t.entity, '')) s
                WHERE t.id = '$target' AND s.value IS NOT NULL AND $__timeFilter(s.ts)
                ORDER BY 1
                """
            ).time_series(),
            sql(
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
                """
            ).time_series(),
            width=16,
            height=10,
            description="Actual: the indicator per day as GET /v1/series gives it from the target's start "
            "(iw_indicator_series; increase targets cumulated since the start). "
            "Expected: the planned trajectory from iw_target_expected(); goal: the target's goal.",
        )
        .line_width(2)
        .fill_opacity(0)
        .span_nulls(True)
        .show_points(common.VisibilityMode.NEVER)
        .color_scheme(color_scheme(model.FieldColorModeId.PALETTE_CLASSIC))
        .override_by_name("expected", [line_style("dash", [10, 10])])
        .override_by_name("goal", [fixed_color("red"), line_style("dot", [2, 6])])
        .legend(legend())
    )
    board.with_panel(
        table_panel(
            "Who lags on ${target}",
            sql(
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
            ),
            width=8,
            height=10,
            description="The cities and operators contributing most to the shortfall against expected.",
        )
        .decimals(1)
        .override_by_name("Share of shortfall", percent_gauge())
    )
    return board_json(board)
