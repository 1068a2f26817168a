"""Reconciliation gaps: every reported total beside the sum of its parts (child regions or operators).

`reconciliation` is the one public reader (API, console, bulletins); `publish_reconciliation` stores its rows
for every indicator with reported totals, as of now, for the boards (table `reconciliation_gap`);
`rows_from_checks` turns the checks the resolver records into rows and is pure.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta

import numpy as np
import psycopg
from pydantic import BaseModel

from metrics.db import owns_transaction
from metrics.indicators import Check, Resolver, Scope, gauge_leaf, increase_leaf, volume_leaf
from metrics.query import _check
from metrics.readers import fetch_indicator_inputs
from metrics.timeutil import EPSILON, PLAN_TZ, aware, end_of_day, epoch, start_of_year
from reference.catalogue import INDICATORS, METRICS, Kind
from reference.operators import ALL_OPERATOR
from reference.regions import NATION, PROVINCE, REGIONS, region_name

_PERIOD = re.compile(r"^(\d{4})(?:-(?:(\d{1,2})|[Qq]([1-4])))?$")


class ReconciliationRow(BaseModel):
    """A reported total beside the sum of its parts."""

    indicator: str
    metric: str
    region: int
    region_name: str
    operator: str  # "all" for all operators together
    axis: str  # "regions": the sum of its child regions; "operators": the sum of the operators
    reported: float
    derived: float
    gap: float  # reported − derived
    gap_share: float | None  # gap / reported
    parts_reporting: int
    parts_total: int
    start: datetime | None
    as_of: datetime


def parse_period(text: str) -> tuple[date, date]:
    """A period `YYYY`, `YYYY-MM` or `YYYY-Qn` → (first day, last day)."""
    m = _PERIOD.match(text.strip())
    if not m:
        raise ValueError(f"period {text!r} is not a year, month or quarter (e.g. 2023, 2023-09, 2023-Q3)")
    year = int(m[1])
    if m[2]:
        month = int(m[2])
        if not 1 <= month <= 12:
            raise ValueError(f"period {text!r}: no month {month}")
        first, months = date(year, month, 1), 1
    elif m[3]:
        first, months = date(year, 3 * int(m[3]) - 2, 1), 3
    else:
        first, months = date(year, 1, 1), 12
    nm = first.month - 1 + months
    last = date(year + nm // 12, nm % 12 + 1, 1) - timedelta(days=1)
    return first, last


def rows_from_checks(
    checks: list[Check], indicator_id: str, metric_id: str, start: datetime | None, as_of: datetime
) -> list[ReconciliationRow]:
    """One row per recorded check with both a reported total and a sum of parts (first bucket), largest gap
    first. Pure."""
    out: list[ReconciliationRow] = []
    for c in checks:
        reported, derived = float(c.total.reported[0]), float(c.total.derived[0])
        if math.isnan(reported) or math.isnan(derived):
            continue
        gap = reported - derived
        out.append(
            ReconciliationRow(
                indicator=indicator_id,
                metric=metric_id,
                region=c.region,
                region_name=region_name(c.region),
                operator=c.operator or ALL_OPERATOR,
                axis=c.axis,
                reported=reported,
                derived=derived,
                gap=gap,
                gap_share=gap / reported if reported else None,
                parts_reporting=int(c.total.parts_reporting[0]),
                parts_total=c.total.parts_total,
                start=start,
                as_of=as_of,
            )
        )
    out.sort(key=lambda r: (-abs(r.gap), r.region, r.operator, r.axis))
    return out


def _metrics_of(indicator_id: str) -> list[tuple[str, bool]]:
    """The pushed metrics an indicator adds up, and whether each is taken as an increase."""
    ind = INDICATORS[indicator_id]
    if ind.derivation == "metric":
        return [(indicator_id, False)]
    if ind.derivation == "increase":
        return [(m, True) for m in ind.inputs]
    return [(m, False) for m in ind.inputs if not METRICS[m].entity_required]


@owns_transaction
def reconciliation(
    conn: psycopg.Connection,
    indicator: str,
    *,
    region: int = PROVINCE,
    as_of: datetime | None = None,
    period: str | None = None,
) -> list[ReconciliationRow]:
    """Reported totals beside the sums of their parts, in `region` and every region below it, for the
    metrics `indicator` adds up: gauges at the instant, volumes and increases over the period (a ytd
    figure and an increase since 1 January, so year-to-date figures are compared as published).

    Give `period` (`2023`, `2023-09`, `2023-Q3`: its last day) or `as_of`."""
    _check(indicator, region)
    if period is not None:
        first, last = parse_period(period)
        until = end_of_day(last)
        period_start: datetime | None = datetime(first.year, first.month, first.day, tzinfo=until.tzinfo)
    elif as_of is not None:
        until = aware(as_of)
        period_start = None
    else:
        raise ValueError("give a period or an as_of instant")
    scope = Scope(region)
    rows: list[ReconciliationRow] = []
    for metric_id, increase in _metrics_of(indicator):
        kind = METRICS[metric_id].kind
        if increase or kind == Kind.YTD:
            start: datetime | None = start_of_year(until)
        elif kind == Kind.GAUGE:
            start = None
        else:
            start = period_start or start_of_year(until)
        since = start or until
        data = fetch_indicator_inputs(conn, metric_id, scope, min(since, until), until + EPSILON)
        lo = np.array([epoch(start or until)])
        hi = np.array([epoch(until + EPSILON)])
        total_leaf = None
        if increase:
            leaf = increase_leaf(metric_id, lo, hi, epoch(start) if start else None)
            total_leaf = increase_leaf(metric_id, lo, hi, epoch(start) if start else None, strict=True)
        elif kind == Kind.GAUGE:
            leaf = gauge_leaf(metric_id, hi)
        else:
            leaf = volume_leaf(metric_id, lo, hi)
        resolver = Resolver(data, metric_id, scope, leaf, lo.shape, total_leaf)
        resolver.record = True
        resolver.node(region, None)
        rows.extend(rows_from_checks(resolver.checks, indicator, metric_id, start, until))
    return rows


def indicators_with_reported_totals(conn: psycopg.Connection) -> list[str]:
    """The indicators one of whose metrics has a reported total (a series of all operators or of the
    administration), from the series catalogue."""
    reported = {m for (m,) in conn.execute("SELECT DISTINCT metric FROM series WHERE operator IN ('all', 'admin')")}
    return sorted(i for i in INDICATORS if any(m in reported for m, _ in _metrics_of(i)))


_PUBLISHED_COLUMNS = (
    "indicator", "metric", "region", "operator", "axis", "reported", "derived", "gap", "gap_share",
    "parts_reporting", "parts_total", "period_start", "as_of",
)  # fmt: skip


@owns_transaction
def publish_reconciliation(conn: psycopg.Connection, as_of: datetime | None = None) -> int:
    """Replace `reconciliation_gap` with the rows `reconciliation` gives, as of `as_of` (default now), for
    every indicator with reported totals, over the whole region list (the nation where it is listed).
    Returns the number of rows published."""
    until = aware(as_of) if as_of is not None else datetime.now(tz=PLAN_TZ)
    root = NATION if NATION in REGIONS else PROVINCE
    rows = [r for i in indicators_with_reported_totals(conn) for r in reconciliation(conn, i, region=root, as_of=until)]
    conn.execute("DELETE FROM reconciliation_gap")
    with conn.cursor().copy(f"COPY reconciliation_gap ({', '.join(_PUBLISHED_COLUMNS)}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row(
                (r.indicator, r.metric, r.region, r.operator, r.axis, r.reported, r.derived, r.gap, r.gap_share,
                 r.parts_reporting, r.parts_total, r.start, r.as_of)
            )  # fmt: skip
    return len(rows)
