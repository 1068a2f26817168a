"""The alerts board: what fires now, the recent alerts with their state and acknowledgement, and the alerts
fired per day (docs/interface.md §9). Reads the alert table the alerting layer keeps."""

from __future__ import annotations

from grafana_foundation_sdk.models import common

from dashboards.boards.panels import (
    board_json,
    colored_cells,
    new_board,
    sql,
    stacked,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)
from dashboards.grafana import Json

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

_COLUMNS = """
    a.severity AS "Severity", a.kind AS "Kind", a.rule_id AS "Rule", a.summary AS "Summary",
    a.value AS "Value", a.scope::text AS "Scope", a.started_at AS "Since", a.fired_at AS "Fired",
    a.acknowledged_at IS NOT NULL AS "Acknowledged", a.acknowledged_by AS "By"
""".strip()


def alerts_board() -> Json:
    board = new_board(
        "iw-alerts",
        "Alerts",
        "Firing alerts and the recent ones, acknowledged or not (docs/interface.md §9).",
        ["alerts"],
        time_from="now-30d",
        refresh="1m",
    )
    board.with_panel(
        stat_panel(
            "Now",
            sql(
                """
                SELECT count(*) FILTER (WHERE state = 'firing') AS "firing",
                       count(*) FILTER (WHERE state = 'firing' AND acknowledged_at IS NULL) AS "not acknowledged",
                       count(*) FILTER (WHERE state = 'firing' AND severity = 'critical') AS "critical",
                       count(*) FILTER (WHERE state = 'pending') AS "pending"
                FROM alert
                """
            ),
            width=24,
            height=4,
        ).thresholds(thresholds((None, "green"), (1, "red")))
    )
    board.with_panel(
        table_panel(
            "Firing",
            sql(
                f"""
                SELECT {_COLUMNS}
                FROM alert a
                WHERE a.state = 'firing'
                ORDER BY (a.acknowledged_at IS NOT NULL), a.fired_at DESC
                """
            ),
            width=24,
            height=9,
            description="Unacknowledged alerts first.",
        ).override_by_name("Severity", colored_cells(SEVERITY_COLORS))
    )
    board.with_panel(
        table_panel(
            "Recent (started, fired or resolved in the time range)",
            sql(
                f"""
                SELECT a.state AS "State", {_COLUMNS}, a.resolved_at AS "Resolved"
                FROM alert a
                WHERE $__timeFilter(a.started_at) OR $__timeFilter(a.fired_at) OR $__timeFilter(a.resolved_at)
                ORDER BY coalesce(a.resolved_at, a.fired_at, a.started_at) DESC
                LIMIT 500
                """
            ),
            width=24,
            height=10,
        )
        .override_by_name("Severity", colored_cells(SEVERITY_COLORS))
        .override_by_name("State", colored_cells(ALERT_STATE_COLORS, background=False))
    )
    board.with_panel(
        timeseries_panel(
            "Alerts fired per day, by kind",
            sql(
                """
                SELECT $__timeGroupAlias(a.fired_at, '1d'), a.kind AS "metric", count(*) AS "value"
                FROM alert a
                WHERE a.fired_at IS NOT NULL AND $__timeFilter(a.fired_at)
                GROUP BY 1, 2
                ORDER BY 1, 2
                """
            ).time_series(),
            width=24,
            height=8,
        )
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(70)
        .stacking(stacked())
    )
    return board_json(board)
