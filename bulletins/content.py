"""What a bulletin says, gathered from the metrics layer: each target's progress, coverage and data
as of the period end, a monthly series for its chart, rankings, late feeds and reconciliation gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg

from bulletins import feeds as feeds_mod
from bulletins.labels import indicator_zh, operator_zh, region_zh
from bulletins.periods import Period
from bulletins.ranking import RankRow, rank_growth, rank_shares, status_counts
from bulletins.reconciliation import ReconciliationGap, reconciliation_gaps
from metrics import Progress, Target, breakdown, evaluate_targets, indicator_series, list_targets
from metrics.indicators import fetch_regions, input_metrics, is_increase
from metrics.timeutil import EPSILON, now, start_of_day
from reference.catalogue import INDICATORS, Kind
from reference.regions import PROVINCE, REGIONS, cities_of, subtree, unknown_region_message
from storage.transactions import owns_transaction


class UnknownRegion(ValueError):
    """The region asked for is not a known GB/T 2260 code of the product."""


@dataclass(slots=True)
class TargetSection:
    progress: Progress
    target: Target
    coverage: str | None
    data_as_of: datetime | None
    #: monthly (bucket start, value) from the target's start to the period end
    series: list[tuple[datetime, float | None]] = field(default_factory=list)
    shortfall_cities: list[RankRow] = field(default_factory=list)
    shortfall_operators: list[RankRow] = field(default_factory=list)


@dataclass(slots=True)
class GrowthRanking:
    indicator: str
    unit: str
    by: str  # "city" | "operator"
    measure: str  # "增量" (change of a level) or "变化" (change of a ratio against the previous period)
    rows: list[RankRow]


@dataclass(slots=True)
class Bulletin:
    period: Period
    region: int
    generated_at: datetime
    targets: list[TargetSection]
    counts: dict[str, int]
    growth: list[GrowthRanking]
    late_feeds: list[feeds_mod.LateFeed]
    rejections: list[feeds_mod.Rejections]
    reconciliation: list[ReconciliationGap]

    @property
    def as_of(self) -> datetime:
        return self.period.as_of

    @property
    def has_data(self) -> bool:
        return any(t.progress.status != "no_data" for t in self.targets)

    @property
    def region_zh(self) -> str:
        return region_zh(self.region)

    def summary(self) -> dict[str, object]:
        """A JSON-able digest (stored beside the files, listed by the API)."""
        return {
            "period": self.period.label,
            "title": f"{self.region_zh}{self.period.title_zh}数字基础设施规划目标{self.period.kind_zh}通报",
            "region": self.region,
            "as_of": self.as_of.isoformat(),
            "counts": self.counts,
            "has_data": self.has_data,
            "targets": {t.progress.target_id: t.progress.status for t in self.targets},
        }


def check_region(region: int) -> None:
    if region not in REGIONS:
        raise UnknownRegion(unknown_region_message(str(region)))


def targets_in(targets: list[Target], region: int, period_first: date, period_last: date) -> list[Target]:
    """Pure: the targets a bulletin for `region` covers over [period_first, period_last]: those in force
    during the period (their [start, deadline] overlaps it) whose region is `region` or below it."""
    below = subtree(region)
    return [t for t in targets if t.start <= period_last and t.deadline >= period_first and t.region in below]


def _coverage(conn: psycopg.Connection, p: Progress, t: Target, as_of: datetime) -> str | None:
    """How many of the scope's parts reported: cities for the province, operators for a city."""
    if p.status == "no_data":
        return None
    start = start_of_day(t.start)
    if p.region == PROVINCE:
        parts = breakdown(
            conn, p.indicator, region=p.region, by="region", as_of=as_of, start=start, operator=p.operator
        )
        n = sum(1 for c in parts if c.value is not None)
        return f"{n}/{len(cities_of(PROVINCE))}个设区市"
    if p.operator is None:
        parts = breakdown(conn, p.indicator, region=p.region, by="operator", as_of=as_of, start=start)
        n = sum(1 for c in parts if c.value is not None)
        return f"{n}家单位报送"
    return None


def _data_as_of(p: Progress, t: Target, reports: list[feeds_mod.FeedReport]) -> datetime | None:
    """The newest observation at or before the period end in the target's scope."""
    given = getattr(p, "data_as_of", None)  # the metrics layer may carry it on Progress
    if isinstance(given, datetime):
        return given
    metrics_in = set(input_metrics(t.indicator))
    regions = set(fetch_regions(t.indicator, t.region))
    seen = [
        f.last_ts
        for f in reports
        if f.metric in metrics_in
        and f.region in regions
        and (t.operator is None or f.operator in (t.operator, "admin"))
    ]
    return max(seen, default=None)


def _series(conn: psycopg.Connection, t: Target, period: Period) -> list[tuple[datetime, float | None]]:
    start = start_of_day(t.start)
    end = start_of_day(period.end + timedelta(days=1))
    if end <= start:
        return []
    points = indicator_series(
        conn, t.indicator, region=t.region, operator=t.operator, start=start, end=end, interval="1mo"
    )
    return [(pt.ts, pt.value) for pt in points]


def _names(by: str, keys: list[str]) -> list[tuple[str, str]]:
    if by == "city":
        return [(k, region_zh(int(k))) for k in keys]
    return [(k, operator_zh(k)) for k in keys]


def _growth(
    conn: psycopg.Connection, indicator: str, region: int, period: Period, lower_better: bool
) -> list[GrowthRanking]:
    """Cities (for the province) and operators ranked by growth over the period."""
    ind = INDICATORS[indicator]
    end = period.as_of
    out = []
    for by, bd in (("city", "region"), ("operator", "operator")):
        if by == "city" and region != PROVINCE:
            continue
        if ind.derivation == "ratio":
            cur = breakdown(conn, indicator, region=region, by=bd, as_of=end, start=period.start_instant)  # type: ignore[arg-type]
            prev_p = period.previous()
            prev = breakdown(conn, indicator, region=region, by=bd, as_of=prev_p.as_of, start=prev_p.start_instant)  # type: ignore[arg-type]
            measure = "较上期变化"
        else:
            cur = breakdown(conn, indicator, region=region, by=bd, as_of=end, start=period.start_instant)  # type: ignore[arg-type]
            prev = breakdown(conn, indicator, region=region, by=bd, as_of=period.start_instant - EPSILON)  # type: ignore[arg-type]
            measure = "本期增量"
        keys = (
            [str(c) for c in cities_of(region)]
            if by == "city"
            else sorted({c.key for c in cur} | {c.key for c in prev})
        )
        rows = rank_growth(
            _names(by, keys),
            {c.key: c.value for c in prev},
            {c.key: c.value for c in cur},
            lower_is_better=lower_better,
        )
        out.append(GrowthRanking(indicator, ind.unit, by, measure, rows))
    return out


def ranked_indicators(targets: list[Target]) -> list[tuple[str, bool]]:
    """The indicators ranked by growth: each target's (an increase's underlying level), once, with whether
    lower is better; designations (gigabit cities) are not ranked."""
    out: dict[str, bool] = {}
    for t in targets:
        ind = t.indicator
        if INDICATORS[ind].derivation == "count_cities":
            continue
        if is_increase(ind):
            ind = INDICATORS[ind].inputs[0]
        if INDICATORS[ind].derivation == "metric" and INDICATORS[ind].kind != Kind.GAUGE:
            continue
        out.setdefault(ind, t.comparator in ("<", "<="))
    return list(out.items())


@owns_transaction
def build_bulletin(
    conn: psycopg.Connection, period: Period, region: int = PROVINCE, *, generated_at: datetime | None = None
) -> Bulletin:
    """Everything the bulletin of `period` for `region` shows, at the period end (reads only; an idle
    connection is left idle)."""
    check_region(region)
    as_of = period.as_of
    targets = targets_in(list_targets(conn), region, period.start, period.end)
    by_id = {t.id: t for t in targets}
    progresses = evaluate_targets(conn, as_of, [t.id for t in targets]) if targets else []
    reports = feeds_mod.last_reports(conn, as_of, region)
    sections = []
    for p in progresses:
        t = by_id[p.target_id]
        sections.append(
            TargetSection(
                progress=p,
                target=t,
                coverage=_coverage(conn, p, t, as_of),
                data_as_of=_data_as_of(p, t, reports),
                series=_series(conn, t, period) if p.status != "no_data" else [],  # no data: no chart
                shortfall_cities=rank_shares(
                    [(lg.key, region_zh(int(lg.key)), lg.share_of_shortfall, lg.actual) for lg in p.laggard_cities]
                ),
                shortfall_operators=rank_shares(
                    [(lg.key, operator_zh(lg.key), lg.share_of_shortfall, lg.actual) for lg in p.laggard_operators]
                ),
            )
        )
    with_data = [s.target for s in sections if s.progress.status != "no_data"]
    growth: list[GrowthRanking] = []
    for ind, lower in ranked_indicators(with_data):
        growth += _growth(conn, ind, region, period, lower)
    growth = [g for g in growth if any(r.change is not None for r in g.rows)]
    recon = reconciliation_gaps(conn, sorted({t.indicator for t in targets}), region, period.label)
    bulletin = Bulletin(
        period=period,
        region=region,
        generated_at=generated_at or now(),
        targets=sections,
        counts=status_counts(s.progress.status for s in sections),
        growth=growth,
        late_feeds=feeds_mod.late_feeds(reports, as_of),
        rejections=feeds_mod.rejections(conn, period.start_instant, as_of),
        reconciliation=recon,
    )
    return bulletin


def describe(indicator: str) -> str:
    return indicator_zh(indicator)
