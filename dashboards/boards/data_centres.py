"""The data-centre board: PUE (Σ facility energy / Σ IT energy) per data centre and per city against the
PUE target, and the province's facility and IT energy.

Every value is read from the published series: a city or the province from iw_indicator_series(), every data
centre at once from iw_entity_series() (the same rule, in one read), so a centre or a city shows what
GET /v1/series gives for its scope.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from grafana_foundation_sdk.builders import common as builder_common
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import common

from dashboards.boards.panels import (
    PROVINCE_CITIES,
    board_json,
    cell_colors,
    nested,
    new_board,
    sql,
    stacked,
    table_panel,
    thresholds,
    timeseries_panel,
)
from dashboards.grafana import Json
from reference.regions import PROVINCE

DEFAULT_PUE_GOAL = 1.5  # domain.md: Ganzhou's data-centre PUE goal (< 1.5)

#: Each data centre's daily PUE in the time range, as (entity, region, operator, ts, value) rows.
_CENTRES_DAILY_PUE = """
    SELECT s.entity, s.region, s.operator, s.ts, s.value
    FROM iw_entity_series('dc_pue', '1d', $__timeFrom(), $__timeTo()) s"""


def pue_goal(targets_file: Path | None = None) -> float:
    """The PUE goal of the shipped plan targets (the data-centre board's target line)."""
    path = targets_file or Path(__file__).resolve().parents[2] / "metrics" / "default_targets.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        return DEFAULT_PUE_GOAL
    for target in data.get("targets", []):
        if target.get("indicator") == "dc_pue" and isinstance(target.get("goal"), int | float):
            return float(target["goal"])
    return DEFAULT_PUE_GOAL


def data_centres_board() -> Json:
    goal = pue_goal()
    board = new_board(
        "iw-data-centres",
        "Data centres",
        "PUE (Σ facility energy / Σ IT energy) per data centre and per city, energy, and the PUE target.",
        ["data-centres"],
        time_from="now-90d",
    )
    board.with_panel(
        _pue_chart(
            timeseries_panel(
                "Daily PUE of the 10 data centres with the highest PUE",
                sql(
                    "\n".join(
                        [
                            "WITH daily AS MATERIALIZED (",
                            nested(_CENTRES_DAILY_PUE, "    "),
                            "),",
                            nested(
                                """
                                worst AS (
                                    SELECT entity FROM daily GROUP BY entity ORDER BY avg(value) DESC, entity LIMIT 10
                                )
                                SELECT d.ts AS "time", d.entity AS "metric", d.value AS "value"
                                FROM daily d JOIN worst USING (entity)
                                ORDER BY 1, 2
                                """
                            ),
                        ]
                    )
                ).time_series(),
                width=12,
                height=10,
                description=(
                    f"The ten with the highest mean daily PUE in the time range (every centre's last day is in the "
                    f"table below). The red band starts at the PUE target {goal} (Ganzhou plan 003, (四)2)."
                ),
            ),
            goal,
        )
    )
    board.with_panel(
        _pue_chart(
            timeseries_panel(
                "Daily PUE per city",
                sql(
                    f"""
                    SELECT s.ts AS "time", g.name AS "metric", s.value AS "value"
                    FROM iw_region g
                    CROSS JOIN LATERAL iw_indicator_series('dc_pue', g.code, '', $__timeFrom(), $__timeTo(), '1d') s
                    WHERE g.code IN ({PROVINCE_CITIES}) AND s.value IS NOT NULL
                    ORDER BY 1, g.code
                    """
                ).time_series(),
                width=12,
                height=10,
                description="A region's PUE is Σ facility energy / Σ IT energy over its data centres, never a mean "
                "of PUEs.",
            ),
            goal,
        )
    )
    board.with_panel(
        table_panel(
            "Data centres, PUE of the last day in the time range",
            sql(
                "\n".join(
                    [
                        "WITH daily AS MATERIALIZED (",
                        nested(_CENTRES_DAILY_PUE, "    "),
                        "),",
                        nested(
                            # each centre's last day by hashing, not by sorting every day of every centre
                            """
                            last AS (
                                SELECT entity, region, operator, max(ts) AS ts FROM daily GROUP BY entity, region, operator
                            )
                            SELECT d.entity AS "Data centre", g.name AS "City", d.operator AS "Operator",
                                   d.ts AS "Day", d.value AS "PUE"
                            FROM daily d JOIN last USING (entity, region, operator, ts) JOIN iw_region g ON g.code = d.region
                            ORDER BY d.entity, d.region, d.operator
                            """
                        ),
                    ]
                )
            ),
            width=10,
            height=10,
        )
        .decimals(3)
        .thresholds(thresholds((None, "green"), (goal, "red")))
        .override_by_name("PUE", [cell_colors()])
    )
    board.with_panel(
        timeseries_panel(
            "Data-centre energy per day, province",
            sql(
                f"""
                SELECT s.ts AS "time",
                       CASE i.indicator WHEN 'dc_energy_total_kwh' THEN 'facility' ELSE 'IT equipment' END AS "metric",
                       s.value AS "value"
                FROM (VALUES ('dc_energy_total_kwh'), ('dc_energy_it_kwh')) AS i(indicator)
                CROSS JOIN LATERAL iw_indicator_series(
                    i.indicator, {PROVINCE}, '', $__timeFrom(), $__timeTo(), '1d') s
                WHERE s.value IS NOT NULL
                ORDER BY 1, 2
                """
            ).time_series(),
            width=14,
            height=10,
            description="Counter increases per day (meter resets handled by the metrics layer).",
        )
        .unit("kwatth")
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .line_width(1)
        .stacking(stacked(common.StackingMode.NONE))
    )
    return board_json(board)


def _pue_chart(panel: timeseries.Panel, goal: float) -> timeseries.Panel:
    """Daily PUE lines with the band above the target in red."""
    return (
        panel.unit("none")
        .decimals(2)
        .thresholds(thresholds((None, "green"), (goal, "red")))
        .thresholds_style(
            builder_common.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE_AND_AREA)
        )
        .line_width(1)
        .fill_opacity(0)
        .show_points(common.VisibilityMode.AUTO)
    )
