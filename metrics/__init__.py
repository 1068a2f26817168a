"""Indicators, plan targets and progress: the metrics layer's public interface (docs/metrics.md)."""

from metrics.freshness import FeedFreshness, feed_freshness
from metrics.progress import Laggard, Progress, Status, evaluate_target, evaluate_targets, store_progress
from metrics.query import (
    Contribution,
    IndicatorValue,
    SeriesPoint,
    breakdown,
    entities,
    indicator_series,
    indicator_value,
)
from metrics.rollups import refresh_rollups
from metrics.targets import (
    DEFAULT_TARGETS_FILE,
    Target,
    get_target,
    list_targets,
    load_targets,
    publish_trajectories,
    retire_target,
    upsert_target,
)
from metrics.timeutil import PLAN_TZ, parse_as_of

__all__ = [
    "DEFAULT_TARGETS_FILE",
    "PLAN_TZ",
    "Contribution",
    "FeedFreshness",
    "IndicatorValue",
    "Laggard",
    "Progress",
    "SeriesPoint",
    "Status",
    "Target",
    "breakdown",
    "entities",
    "evaluate_target",
    "evaluate_targets",
    "feed_freshness",
    "get_target",
    "indicator_series",
    "indicator_value",
    "list_targets",
    "load_targets",
    "parse_as_of",
    "publish_trajectories",
    "refresh_rollups",
    "retire_target",
    "store_progress",
    "upsert_target",
]
