"""What each rule kind finds in one evaluation: pure judgements over rows, plus the small reads feeding them.

target: a target's progress status; threshold: an indicator crossing a value on every bucket of a window;
stale: an operator's metric silent longer than cadence × factor; quality: an operator's rejected share.
"""

from __future__ import annotations

import operator as op
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg

from alerts.lifecycle import Finding, scope_key
from alerts.rules import Rule
from core.planzone import plan_tz
from reference.catalogue import INDICATORS, METRICS
from reference.regions import PROVINCE, cities_of, region_name

PLAN_TZ = plan_tz()  # INFRAWATCH_TIMEZONE
_COMPARE: dict[str, Callable[[float, float], bool]] = {">": op.gt, ">=": op.ge, "<": op.lt, "<=": op.le}
_BUCKET_S = {"1h": 3600, "1d": 86400}


class ConditionUnavailable(RuntimeError):
    """The data a rule needs cannot be read now (e.g. the metrics layer is missing); the rule is skipped."""


def _fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


# --- target ---------------------------------------------------------------------------------------------


def deadline_end(deadline: date) -> datetime:
    """The end of a deadline day in plan time."""
    return datetime.combine(deadline + timedelta(days=1), time(0), PLAN_TZ)


def target_findings(rule: Rule, progresses: Iterable[Any], first_evaluated_at: datetime | None = None) -> list[Finding]:
    """The rule's target, holding when its progress status is one the rule alerts on (severity by status).

    A target already missed when the rule was first evaluated (`first_evaluated_at` at or after the end of
    its deadline) is recorded quietly: there was never a moment to act on it, so it does not notify.
    """
    found: list[Finding] = []
    for p in progresses:
        if p.target_id != rule.target:
            continue
        holds = p.status in rule.statuses
        severity = rule.severity_by_status.get(p.status, rule.severity)
        scope = {k: v for k, v in {"target": p.target_id, "region": p.region, "operator": p.operator}.items() if v}
        summary = (
            f"{p.title or p.target_id} is {p.status.replace('_', ' ')}: actual {_fmt(p.actual)} {p.unit}, "
            f"expected {_fmt(p.expected)}, projected {_fmt(p.projected)}, goal {p.comparator} {_fmt(p.goal)} "
            f"by {p.deadline}"
        )
        quiet = (
            p.status == "missed" and first_evaluated_at is not None and first_evaluated_at >= deadline_end(p.deadline)
        )
        found.append(Finding(scope_key(scope), scope, p.actual, summary, severity, holds=holds, quiet=quiet))
    return found


# --- threshold ------------------------------------------------------------------------------------------


def window_bounds(now: datetime, interval: str, window_s: int) -> tuple[datetime, datetime]:
    """[start, end) of the last `window_s` of complete buckets before `now` (Asia/Shanghai buckets)."""
    local = now.astimezone(PLAN_TZ)
    if interval == "1d":
        end = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        end = local.replace(minute=0, second=0, microsecond=0)
    span = max(window_s, _BUCKET_S[interval])
    return end - timedelta(seconds=span), end


def window_crossed(
    points: Sequence[tuple[datetime, float | None]],
    comparator: str,
    value: float,
    start: datetime,
    end: datetime,
    interval: str,
) -> tuple[bool, float | None]:
    """True when every bucket in [start, end) has a value crossing `value`; also the latest bucket's value.

    A missing bucket (no data) breaks the run: "above 1.5 for 7 days" needs 7 days of evidence.
    """
    step = timedelta(seconds=_BUCKET_S[interval])
    by_bucket = {ts.astimezone(PLAN_TZ): v for ts, v in points if start <= ts < end}
    compare = _COMPARE[comparator]
    latest: float | None = None
    t = start
    crossed = True
    while t < end:
        v = by_bucket.get(t)
        if v is None or not compare(v, value):
            crossed = False
        latest = v
        t = t + step
    return crossed, latest


@dataclass(frozen=True, slots=True)
class ThresholdScope:
    region: int
    operator: str | None
    entity: str | None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in {"region": self.region, "operator": self.operator, "entity": self.entity}.items() if v}


def threshold_scopes(conn: psycopg.Connection, rule: Rule) -> list[ThresholdScope]:
    region = rule.region or PROVINCE
    if rule.each == "entity":
        metrics = _metrics()
        rows = metrics.entities(conn, rule.entity_metric, region=rule.region)
        return [ThresholdScope(int(r), o, e) for r, o, e in rows if e and (rule.operator is None or o == rule.operator)]
    if rule.each == "region":
        return [ThresholdScope(c, rule.operator, None) for c in cities_of(region)]
    if rule.each == "operator":
        inputs = list(INDICATORS[rule.indicator or ""].inputs)
        ops = conn.execute(
            "SELECT DISTINCT operator FROM feed_freshness WHERE metric = ANY(%s) ORDER BY 1", (inputs,)
        ).fetchall()
        return [ThresholdScope(region, o, None) for (o,) in ops]
    return [ThresholdScope(region, rule.operator, None)]


def threshold_findings(conn: psycopg.Connection, rule: Rule, now: datetime) -> list[Finding]:
    metrics = _metrics()
    start, end = window_bounds(now, rule.interval, rule.window_s)
    assert rule.indicator and rule.comparator and rule.value is not None
    found: list[Finding] = []
    for s in threshold_scopes(conn, rule):
        series = metrics.indicator_series(
            conn,
            rule.indicator,
            region=s.region,
            operator=s.operator,
            entity=s.entity,
            start=start,
            end=end,
            interval=rule.interval,
        )
        crossed, latest = window_crossed(
            [(p.ts, p.value) for p in series], rule.comparator, rule.value, start, end, rule.interval
        )
        scope = s.as_dict()
        who = " ".join(x for x in (s.entity or "", s.operator or "", region_name(s.region)) if x)
        if not crossed:
            summary = f"{rule.indicator} of {who}: latest {rule.interval} bucket {_fmt(latest)}, no longer {rule.comparator} {rule.value:g} throughout"
            found.append(Finding(scope_key(scope), scope, latest, summary, rule.severity, holds=False))
            continue
        days = (end - start).total_seconds() / 86400
        span = f"{days:g} days" if rule.interval == "1d" else f"{(end - start).total_seconds() / 3600:g} hours"
        summary = (
            f"{rule.indicator} of {who} {rule.comparator} {rule.value:g} in every {rule.interval} bucket "
            f"for {span} (latest {_fmt(latest)})"
        )
        found.append(Finding(scope_key(scope), scope, latest, summary, rule.severity))
    return found


# --- stale ----------------------------------------------------------------------------------------------


def stale_findings(rule: Rule, rows: Iterable[tuple[str, str, int, datetime]], now: datetime) -> list[Finding]:
    """One finding per feed (operator × metric) from its regions' (operator, metric, region, last_ts): holding
    when any region is older than cadence × factor. A feed silent in every region is one alert for the
    feed, not one per region; the summary names the silent regions when only some are."""
    feeds: dict[tuple[str, str], list[tuple[int, datetime]]] = {}
    for operator, metric, region, last_ts in rows:
        feeds.setdefault((operator, metric), []).append((region, last_ts))
    found: list[Finding] = []
    for (operator, metric), regions in sorted(feeds.items()):
        cadence = rule.effective_cadence_s(metric)
        limit_s = cadence * rule.cadence_factor
        silent = sorted((r, ts) for r, ts in regions if (now - ts).total_seconds() > limit_s)
        newest = max(ts for _, ts in regions)
        scope = {"operator": operator, "metric": metric}
        if not silent:
            summary = (
                f"{operator} sends {metric} again: newest {_local(newest)} ({_age((now - newest).total_seconds())} ago)"
            )
            value = round((now - newest).total_seconds(), 1)
            found.append(Finding(scope_key(scope), scope, value, summary, rule.severity, holds=False))
            continue
        oldest = min(ts for _, ts in silent)
        if len(silent) == len(regions):
            age_s = (now - newest).total_seconds()
            where = f"any of its {len(regions)} regions" if len(regions) > 1 else region_name(regions[0][0])
            summary = (
                f"{operator} has sent no {metric} for {where} since {_local(newest)} "
                f"({_age(age_s)} silent; expected every {_age(cadence)})"
            )
        else:
            age_s = (now - oldest).total_seconds()
            names = ", ".join(region_name(r) for r, _ in silent[:5]) + (" …" if len(silent) > 5 else "")
            summary = (
                f"{operator} has sent no {metric} for {len(silent)} of its {len(regions)} regions ({names}); "
                f"the oldest since {_local(oldest)} ({_age(age_s)} silent; expected every {_age(cadence)})"
            )
        found.append(Finding(scope_key(scope), scope, round(age_s, 1), summary, rule.severity))
    return found


def _local(ts: datetime) -> str:
    return f"{ts.astimezone(PLAN_TZ):%Y-%m-%d %H:%M}"


def _age(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def read_feeds(conn: psycopg.Connection, rule: Rule) -> list[tuple[str, str, int, datetime]]:
    sql = "SELECT operator, metric, region, last_ts FROM feed_freshness WHERE metric = ANY(%s)"
    params: list[Any] = [[rule.metric] if rule.metric else list(METRICS)]
    if rule.operator:
        sql += " AND operator = %s"
        params.append(rule.operator)
    return [tuple(r) for r in conn.execute(sql + " ORDER BY operator, region", params)]


# --- quality --------------------------------------------------------------------------------------------


def quality_findings(rule: Rule, rows: Iterable[tuple[str, int, int]], window_s: int) -> list[Finding]:
    """Operators (operator, received, rejected) whose rejected share exceeds the limit."""
    assert rule.limit is not None
    found: list[Finding] = []
    for operator, received, rejected in rows:
        if received < max(rule.min_received, 1):
            continue
        share = rejected / received
        scope = {"operator": operator}
        if share <= rule.limit:
            summary = f"{operator}: {rejected} of {received} observations rejected in the last {_age(window_s)} ({share:.1%}, within {rule.limit:.0%})"
            found.append(Finding(scope_key(scope), scope, round(share, 4), summary, rule.severity, holds=False))
            continue
        summary = (
            f"{operator}: {rejected} of {received} observations rejected in the last {_age(window_s)} "
            f"({share:.1%} > {rule.limit:.0%}); see the quarantine"
        )
        found.append(Finding(scope_key(scope), scope, round(share, 4), summary, rule.severity))
    return found


def read_rejections(conn: psycopg.Connection, rule: Rule, now: datetime, window_s: int) -> list[tuple[str, int, int]]:
    sql = (
        "SELECT operator, sum(accepted + duplicates + revised + rejected)::bigint, sum(rejected)::bigint "
        "FROM ingest_batch WHERE operator IS NOT NULL AND received_at > %s AND received_at <= %s"
    )
    params: list[Any] = [now - timedelta(seconds=window_s), now]
    if rule.operator:
        sql += " AND operator = %s"
        params.append(rule.operator)
    return [(o, int(n), int(r)) for o, n, r in conn.execute(sql + " GROUP BY operator ORDER BY operator", params)]


# --- dispatch -------------------------------------------------------------------------------------------


def findings_for(
    conn: psycopg.Connection,
    rule: Rule,
    now: datetime,
    progresses: list[Any] | None,
    first_evaluated_at: datetime | None = None,
) -> list[Finding]:
    """What `rule` sees now, holding or not. Raises ConditionUnavailable when it cannot judge (the alerts are
    left as they are)."""
    if rule.kind == "target":
        if progresses is None:
            raise ConditionUnavailable("target progress could not be evaluated")
        return target_findings(rule, progresses, first_evaluated_at)
    if rule.kind == "threshold":
        return threshold_findings(conn, rule, now)
    if rule.kind == "stale":
        return stale_findings(rule, read_feeds(conn, rule), now)
    window_s = rule.window_s or 86400
    return quality_findings(rule, read_rejections(conn, rule, now, window_s), window_s)


def _metrics() -> Any:
    try:
        import metrics
    except ImportError as exc:  # pragma: no cover - only while the metrics layer is missing
        raise ConditionUnavailable(f"the metrics layer is not available: {exc}") from exc
    if not hasattr(metrics, "indicator_series"):
        raise ConditionUnavailable("the metrics layer does not provide indicator_series yet")
    return metrics
