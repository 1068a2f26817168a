"""Reconciliation gaps of a bulletin: reported totals beside the sum of their parts.

The metrics layer does not publish a reconciliation reader yet; `reconciliation_gaps` is the one place
that will call it, so the bulletin's section, workbook sheet and wording need no change when it lands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

NO_GAPS_ZH = "无对账差异数据：本期未发现上报总数与分项之和不一致的情况，或暂无可对账的数据。"


@dataclass(frozen=True, slots=True)
class ReconciliationGap:
    """A reported figure for a scope beside the sum of its children (cities or operators)."""

    indicator: str
    region: int
    operator: str | None
    reported: float
    sum_of_parts: float
    parts_reporting: int
    parts_total: int

    @property
    def gap(self) -> float:
        return self.reported - self.sum_of_parts

    @property
    def gap_share(self) -> float | None:
        return self.gap / self.reported if self.reported else None


def reconciliation_gaps(
    conn: psycopg.Connection, indicators: list[str], region: int, as_of: datetime
) -> list[ReconciliationGap]:
    """The gaps of the given indicators in the region at `as_of`, largest first; empty for now (see module)."""
    return []
