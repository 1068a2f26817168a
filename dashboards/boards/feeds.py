"""The feeds board: are the operators' feeds fresh, how much arrives, and what is rejected and why.

Freshness and its stale rule come from iw_feed_freshness_by_metric() (migration 0150), the function
GET /v1/freshness reads too; volumes from ingest_batch, rejections from the iw_rejection view.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as builder_common
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.boards.panels import (
    barchart_panel,
    board_json,
    cell_colors,
    colored_cells,
    fixed_color,
    matrix,
    new_board,
    sql,
    stacked,
    table_panel,
    thresholds,
    timeseries_panel,
)
from dashboards.grafana import Json
from metrics.freshness import STALE_FACTOR

FEED_STATE_COLORS: dict[str, tuple[str, str]] = {"stale": ("stale", "red"), "fresh": ("fresh", "green")}
_RECEIVED = "b.accepted + b.duplicates + b.revised + b.rejected"


def _seconds() -> list[model.DynamicConfigValue]:
    return [model.DynamicConfigValue(id_val="unit", value="s")]


def feeds_board() -> Json:
    board = new_board(
        "iw-feeds",
        "Feeds",
        "Are operators' feeds fresh, how much arrives, and what is rejected and why.",
        ["feeds"],
        time_from="now-7d",
        refresh="1m",
    )
    board.with_panel(
        table_panel(
            "Freshness per operator and metric",
            sql(
                """
                SELECT f.operator AS "Operator", f.metric AS "Metric", f.last_ts AS "Last observation",
                       f.last_received_at AS "Last received", f.age_s AS "Age", f.cadence_s AS "Cadence",
                       f.state AS "State", f.regions AS "Regions"
                FROM iw_feed_freshness_by_metric(now()) f
                ORDER BY f.stale DESC, f.operator, f.metric
                """
            ),
            width=14,
            height=12,
            description=f"A feed is stale when its newest observation is older than {STALE_FACTOR}× the metric's "
            "cadence (iw_feed_stale(), as GET /v1/freshness); stale feeds first.",
        )
        .override_by_name("Age", _seconds())
        .override_by_name("Cadence", _seconds())
        .override_by_name("State", colored_cells(FEED_STATE_COLORS))
    )
    board.with_panel(
        table_panel(
            "Age of the newest observation (hours), operator × metric",
            sql(
                """
                SELECT f.operator AS "Operator", f.metric AS "Metric", round((f.age_s / 3600)::numeric, 1) AS "Age (h)"
                FROM iw_feed_freshness_by_metric(now()) f
                ORDER BY f.operator, f.metric
                """
            ),
            width=10,
            height=12,
        )
        .with_transformation(matrix("Metric", "Operator", "Age (h)"))
        .thresholds(thresholds((None, "green"), (48, "orange"), (24 * 62, "red")))
        .cell_height(common.TableCellHeight.SM)
        .cell_options(common.TableColorTextCellOptions())
    )
    board.with_panel(
        timeseries_panel(
            "Observations received per interval, by operator",
            sql(
                f"""
                SELECT $__timeGroupAlias(b.received_at, $__interval),
                       coalesce(b.operator, 'several') AS "metric",
                       sum({_RECEIVED}) AS "value"
                FROM ingest_batch b
                WHERE $__timeFilter(b.received_at)
                GROUP BY 1, 2
                ORDER BY 1, 2
                """
            ).time_series(),
            width=12,
            height=9,
        )
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .stacking(stacked())
    )
    board.with_panel(
        timeseries_panel(
            "Accepted, duplicate, revised and rejected per interval",
            sql(
                """
                SELECT $__timeGroupAlias(b.received_at, $__interval),
                       sum(b.accepted) AS "accepted", sum(b.duplicates) AS "duplicates",
                       sum(b.revised) AS "revised", sum(b.rejected) AS "rejected"
                FROM ingest_batch b
                WHERE $__timeFilter(b.received_at)
                GROUP BY 1
                ORDER BY 1
                """
            ).time_series(),
            width=12,
            height=9,
        )
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .stacking(stacked())
        .override_by_name("rejected", [fixed_color("red")])
    )
    board.with_panel(
        barchart_panel(
            "Rejections by reason",
            sql(
                """
                SELECT q.reason AS "Reason", count(*) AS "Rejections"
                FROM iw_rejection q
                WHERE $__timeFilter(q.received_at)
                GROUP BY q.reason
                ORDER BY 2 DESC
                LIMIT 15
                """
            ),
            width=12,
            height=10,
        )
        .orientation(common.VizOrientation.HORIZONTAL)
        .x_field("Reason")
        .show_value(common.VisibilityMode.AUTO)
        .legend(builder_common.VizLegendOptions().show_legend(False).display_mode(common.LegendDisplayMode.HIDDEN))
    )
    board.with_panel(
        table_panel(
            "Rejected share per operator in the time range",
            sql(
                f"""
                SELECT coalesce(b.operator, 'several') AS "Operator",
                       sum({_RECEIVED}) AS "Received",
                       sum(b.rejected) AS "Rejected",
                       100.0 * sum(b.rejected) / nullif(sum({_RECEIVED}), 0) AS "Rejected share"
                FROM ingest_batch b
                WHERE $__timeFilter(b.received_at)
                GROUP BY 1
                ORDER BY 4 DESC NULLS LAST
                """
            ),
            width=12,
            height=10,
        )
        .decimals(2)
        .override_by_name(
            "Rejected share",
            [
                model.DynamicConfigValue(id_val="unit", value="percent"),
                model.DynamicConfigValue(
                    id_val="thresholds", value=thresholds((None, "green"), (1, "orange"), (5, "red")).build()
                ),
                cell_colors(background=False),
            ],
        )
    )
    return board_json(board)
