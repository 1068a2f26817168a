"""Reconciliation gaps of a bulletin: the reported totals (a region's own figure, the `all` operator's)
beside the sum of their parts, for the indicators of the targets in force, read through
`metrics.reconciliation.reconciliation` — the same rows as `GET /v1/reconciliation`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from bulletins.labels import region_zh
from metrics.indicators import is_increase
from metrics.reconciliation import ReconciliationRow, reconciliation
from reference.catalogue import METRICS, Kind

NO_GAPS_ZH = "无对账差异数据：本期未发现上报总数与分项之和不一致的情况，或暂无可对账的数据。"
AXIS_ZH = {"regions": "下级地区合计", "operators": "各运营商合计"}


@dataclass(frozen=True, slots=True)
class ReconciliationGap:
    """A reported figure for a scope beside the sum of its parts (child regions or operators)."""

    indicator: str  # the indicator whose reconciliation found it
    metric: str  # the pushed metric the figures are of
    region: int
    region_name: str  # Chinese name of the region
    operator: str  # "all" for the figure of all operators together
    axis: str  # "regions" | "operators"
    reported: float
    sum_of_parts: float
    parts_reporting: int
    parts_total: int
    #: the figures are the metric's increase since `start` (an increase indicator), not its level
    increase: bool = False
    start: datetime | None = None
    as_of: datetime | None = None

    @property
    def gap(self) -> float:
        return self.reported - self.sum_of_parts

    @property
    def gap_share(self) -> float | None:
        return self.gap / self.reported if self.reported else None

    @property
    def basis_zh(self) -> str:
        """What the figures are: the level at the period end, a volume, or an increase since 1 January."""
        if self.increase:
            return "本年增量"
        if self.start is None:
            return "期末值"
        return "本年累计" if METRICS[self.metric].kind == Kind.YTD else "本期累计"

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.metric, self.region, self.operator, self.axis)


def gaps_from_rows(rows: Iterable[ReconciliationRow]) -> list[ReconciliationGap]:
    """Pure: one gap per (metric, region, operator, axis) — several indicators share metrics, and the row of
    an indicator that reads the metric as published (its level or volume) wins over an increase of it —
    only non-zero gaps, the largest |gap| first."""
    best: dict[tuple[str, int, str, str], ReconciliationGap] = {}
    for r in rows:
        inc = is_increase(r.indicator)
        g = ReconciliationGap(
            indicator=r.indicator,
            metric=r.metric,
            region=r.region,
            region_name=region_zh(r.region),
            operator=r.operator,
            axis=r.axis,
            reported=r.reported,
            sum_of_parts=r.derived,
            parts_reporting=r.parts_reporting,
            parts_total=r.parts_total,
            increase=inc,
            start=r.start,
            as_of=r.as_of,
        )
        if g.gap == 0:
            continue
        held = best.get(g.key)
        if held is None or (held.increase and not g.increase):
            best[g.key] = g
    return sorted(best.values(), key=lambda g: (-abs(g.gap), g.region, g.metric, g.operator, g.axis))


def reconciliation_gaps(
    conn: psycopg.Connection, indicators: Iterable[str], region: int, period: str
) -> list[ReconciliationGap]:
    """The gaps of the given indicators in `region` and below over `period` (`2023-09`, `2023-Q3`, `2023`:
    gauges at its last day, volumes over it, increases and year-to-date figures since 1 January)."""
    rows: list[ReconciliationRow] = []
    for ind in indicators:
        rows += reconciliation(conn, ind, region=region, period=period)
    return gaps_from_rows(rows)
