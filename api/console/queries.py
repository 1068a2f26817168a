"""What each console page shows, fetched through metrics/, alerts/ and (for rejections) the quarantine table:
the I/O edge of the console; the arithmetic stays in metrics.compute, the drawing in charts.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from alerts.store import Alert, AlertGroup, alert_groups, count_alerts, list_alerts
from api.console.charts import Chart, Point, expected_trajectory, trajectory_chart
from api.console.views import FeedGrid, freshness_grid
from metrics import (
    Contribution,
    FeedFreshness,
    Laggard,
    Progress,
    Target,
    breakdown,
    evaluate_target,
    evaluate_targets,
    feed_freshness,
    get_target,
    indicator_series,
    list_targets,
)
from metrics.indicators import input_metrics, is_increase, is_volume_ratio
from metrics.timeutil import Interval, end_of_day, next_bucket, start_of_day
from reference.catalogue import METRICS
from reference.regions import PROVINCE
from storage.transactions import owns_transaction

MAX_REJECTIONS = 200
ALERTS_PER_PAGE = 25
#: groups listed above the alerts; the rest are reached through the filters
MAX_GROUPS = 30
#: Targets spanning at most this many days are drawn from daily points, longer ones from monthly points.
DAILY_CHART_DAYS = 92


@dataclass
class TargetCard:
    target: Target
    progress: Progress
    chart: Chart


@dataclass
class BreakdownRow:
    key: str
    name: str
    value: float | None
    laggard: bool
    share_of_shortfall: float | None


@dataclass
class TargetDetail(TargetCard):
    by_city: list[BreakdownRow]
    by_operator: list[BreakdownRow]
    by_entity: list[BreakdownRow]  # data centres, for indicators read from per-site meters
    breakdown_from: datetime | None  # None for levels (gauges): read at breakdown_at, not over a period
    breakdown_at: datetime


@dataclass
class Rejection:
    received_at: datetime
    operator: str | None
    source: str
    location: str
    field: str
    reason: str
    raw: str


def _judged_at(target: Target, progress: Progress) -> datetime:
    """The instant the progress describes: as_of, or the deadline once it has passed."""
    return min(progress.as_of, end_of_day(target.deadline))


def actual_path(conn: psycopg.Connection, target: Target, progress: Progress) -> list[Point]:
    """The indicator at the end of each complete day or month since start, then the actual at as_of
    (increase indicators start from 0 at start)."""
    t0 = start_of_day(target.start)
    until = _judged_at(target, progress)
    if until <= t0:
        return []
    interval: Interval = "1d" if (target.deadline - target.start).days <= DAILY_CHART_DAYS else "1mo"
    points = indicator_series(
        conn, target.indicator, region=target.region, operator=target.operator, start=t0, end=until, interval=interval
    )
    path: list[Point] = [(t0, 0.0)] if is_increase(target.indicator) else []  # an increase is 0 at its start
    for p in points:
        end = next_bucket(p.ts, interval)
        if p.value is not None and end <= until:
            path.append((end, p.value))
    if progress.actual is not None:
        path.append((until, progress.actual))
    return path


def target_chart(target: Target, progress: Progress, path: list[Point], width: int = 360, height: int = 150) -> Chart:
    return trajectory_chart(
        start=start_of_day(target.start),
        deadline=end_of_day(target.deadline),
        as_of=progress.as_of,
        actual=path,
        expected=expected_trajectory(
            start=target.start,
            deadline=target.deadline,
            baseline=progress.baseline,
            goal=progress.goal,
            profile=target.profile,
        ),
        projected=progress.projected,
        goal=progress.goal,
        width=width,
        height=height,
    )


def overview(conn: psycopg.Connection, as_of: datetime | None = None) -> list[TargetCard]:
    """Every active target with its progress and chart, in deadline order."""
    targets = {t.id: t for t in list_targets(conn)}
    cards = []
    for p in evaluate_targets(conn, as_of):
        t = targets.get(p.target_id)
        if t is not None:
            cards.append(TargetCard(t, p, target_chart(t, p, actual_path(conn, t, p))))
    return cards


def _rows(parts: list[Contribution], laggards: list[Laggard]) -> list[BreakdownRow]:
    shares = {lg.key: lg.share_of_shortfall for lg in laggards}
    return [BreakdownRow(c.key, c.name, c.value, c.key in shares, shares.get(c.key)) for c in parts]


def target_detail(conn: psycopg.Connection, target_id: str, as_of: datetime | None = None) -> TargetDetail | None:
    """One target (active or retired) with its progress, chart and breakdown by city and operator."""
    target = get_target(conn, target_id)
    if target is None:
        return None
    progress = evaluate_target(conn, target, as_of)
    at = _judged_at(target, progress)
    since = at - timedelta(days=target.window_days) if is_volume_ratio(target.indicator) else start_of_day(target.start)
    since = min(since, at)
    ind, region, op = target.indicator, target.region, target.operator
    cities = (
        breakdown(conn, ind, region=region, by="region", as_of=at, start=since, operator=op)
        if region == PROVINCE
        else []
    )
    operators = (
        breakdown(conn, ind, region=region, by="operator", as_of=at, start=since, operator=op) if op is None else []
    )
    sites = (
        breakdown(conn, ind, region=region, by="entity", as_of=at, start=since, operator=op)
        if any(METRICS[m].entity_required for m in input_metrics(ind))
        else []
    )
    return TargetDetail(
        target,
        progress,
        target_chart(target, progress, actual_path(conn, target, progress), width=720, height=240),
        by_city=_rows(cities, progress.laggard_cities),
        by_operator=_rows(operators, progress.laggard_operators),
        by_entity=_rows(sites, []),
        breakdown_from=since if is_volume_ratio(ind) or is_increase(ind) else None,
        breakdown_at=at,
    )


@dataclass
class AlertsView:
    """One page of the alerts page: the groups of the matching alerts, a page of them, and the filters."""

    state: str
    rule: str | None
    operator: str | None
    groups: list[AlertGroup]
    more_groups: int
    alerts: list[Alert]
    total: int
    page: int
    pages: int
    rules: list[str]
    operators: list[str]


@owns_transaction
def alerts_view(
    conn: psycopg.Connection,
    operator: str | None,
    *,
    state: str = "firing",
    rule: str | None = None,
    page: int = 1,
    per_page: int = ALERTS_PER_PAGE,
) -> AlertsView:
    """The alerts in `state` (of one rule, about one operator), folded by notification group and a page at a
    time — for an operator key only alerts scoped to its operator, as GET /v1/alerts."""
    total = count_alerts(conn, state, operator, rule=rule)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    groups = alert_groups(conn, state, operator, rule=rule)
    alerts = list_alerts(conn, state, operator, rule=rule, limit=per_page, offset=(page - 1) * per_page)
    rules = [r for (r,) in conn.execute("SELECT DISTINCT rule_id FROM alert ORDER BY 1")]
    ops = [
        o for (o,) in conn.execute("SELECT DISTINCT scope->>'operator' FROM alert WHERE scope ? 'operator' ORDER BY 1")
    ]
    if operator is not None:
        ops = [operator]
    return AlertsView(
        state,
        rule,
        operator,
        groups[:MAX_GROUPS],
        max(0, len(groups) - MAX_GROUPS),
        alerts,
        total,
        page,
        pages,
        rules,
        ops,
    )


def feeds_view(conn: psycopg.Connection, operator: str | None) -> tuple[FeedGrid, list[FeedFreshness]]:
    """The operator × metric grid and the stale feeds (per region), oldest first."""
    feeds = feed_freshness(conn, operator=operator)
    stale = sorted((f for f in feeds if f.stale), key=lambda f: -f.age_s)
    return freshness_grid(feeds), stale


@owns_transaction
def recent_rejections(conn: psycopg.Connection, operator: str | None, limit: int = MAX_REJECTIONS) -> list[Rejection]:
    """The newest quarantined inputs, of one operator (None = every operator), newest first."""
    rows = conn.execute(
        "SELECT received_at, operator, source, location, field, reason, raw FROM quarantine"
        " WHERE %(op)s::text IS NULL OR operator = %(op)s"
        " ORDER BY received_at DESC, id DESC LIMIT %(limit)s",
        {"op": operator, "limit": limit},
    ).fetchall()
    return [Rejection(*r) for r in rows]
