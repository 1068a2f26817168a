"""The infrawatch Grafana boards, generated with grafana-foundation-sdk from the indicator catalogue, the
regions and the plan targets: one module per board, the shared builders in `panels`.

Queries read what the metrics layer publishes (target, target_progress, iw_target_expected(), the series
function iw_indicator_series() the API reads too, iw_entity_series(), iw_feed_freshness_by_metric()) and
the alerting and ingest records (alert, ingest_batch, the iw_rejection view of quarantine, the
iw_reported_total view of reported totals); they never recompute indicators from raw observations.
"""

from __future__ import annotations

from collections.abc import Callable

from dashboards.boards.alerts import alerts_board
from dashboards.boards.contributions import cities_board, operators_board
from dashboards.boards.data_centres import data_centres_board, pue_goal
from dashboards.boards.feeds import feeds_board
from dashboards.boards.indicator_explorer import indicator_explorer_board
from dashboards.boards.panels import STATUS_COLORS, TAG, indicator_options, region_options, unit_of
from dashboards.boards.plan_targets import plan_targets_board
from dashboards.grafana import Json

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


__all__ = [
    "BOARDS",
    "STATUS_COLORS",
    "TAG",
    "alerts_board",
    "all_boards",
    "cities_board",
    "data_centres_board",
    "feeds_board",
    "indicator_explorer_board",
    "indicator_options",
    "operators_board",
    "plan_targets_board",
    "pue_goal",
    "region_options",
    "unit_of",
]
