"""Progress of plan targets (docs/interface.md §8): actual, expected, projected, status, gap and laggards.

Fetches the readings a target needs, then leaves every decision to metrics.compute.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta

import numpy as np
import psycopg
from pydantic import BaseModel

from metrics import compute, verdict
from metrics.compute import Comparator, Series
from metrics.db import owns_transaction
from metrics.indicators import (
    Scope,
    SeriesKey,
    SeriesMap,
    evaluate,
    fetch_regions,
    input_metrics,
    is_increase,
    is_volume_ratio,
    lookback_s,
    staleness_s,
    value_of,
)
from metrics.query import _operator_name
from metrics.readers import fetch_edges, fetch_indicator_inputs, merge_series
from metrics.targets import Target, get_target, list_targets
from metrics.timeutil import EPSILON, aware, end_of_day, epoch, now, start_of_day
from metrics.trajectory import due_fraction, known_baseline, known_goal, publish_trajectory
from metrics.verdict import Status
from reference.catalogue import INDICATORS, METRICS
from reference.regions import cities_of, region_name

TREND_DAYS = 90
MAX_LAGGARDS = 5
_DAY = 86400.0


class Laggard(BaseModel):
    key: str
    name: str
    actual: float | None
    share_of_shortfall: float | None


class Coverage(BaseModel):
    """How many of the parts of a breakdown (cities, operators) reported: `reported` of `of`."""

    reported: int
    of: int


class Progress(BaseModel):
    target_id: str
    title: str
    source: str
    indicator: str
    unit: str
    region: int
    operator: str | None
    comparator: str
    goal: float | None
    baseline: float | None
    actual: float | None
    expected: float | None
    projected: float | None
    gap: float | None
    status: Status
    #: the actual already meets the goal (a share met before its deadline stays on_track with this true)
    met_now: bool = False
    #: the newest observation the progress rests on, and whether it is older than twice its cadence
    data_as_of: datetime | None = None
    stale: bool = False
    as_of: datetime
    start: date
    deadline: date
    laggard_cities: list[Laggard] = []
    laggard_operators: list[Laggard] = []
    #: the parts the breakdown of the shortfall rests on (only those that reported count)
    cities_reporting: Coverage | None = None
    operators_reporting: Coverage | None = None
    #: For an indicator with more than one basis (bs5g_new): "reported" (year-to-date builds reported for
    #: the scope) or "stock" (the increase of the stock in service).
    basis: str | None = None


# -- evaluation -------------------------------------------------------------------------------------------


class _Frame:
    """The instants of one evaluation."""

    def __init__(self, target: Target, as_of: datetime) -> None:
        self.as_of = as_of
        self.t0 = start_of_day(target.start)
        self.t1 = end_of_day(target.deadline)
        self.eff = min(as_of, self.t1)  # after the deadline, judge the value at the deadline
        self.until = self.eff + EPSILON  # readings with ts <= eff
        self.window = timedelta(days=target.window_days)
        self.trend_from = self.until - timedelta(days=TREND_DAYS)


def _value(data: SeriesMap, indicator_id: str, scope: Scope, lo: datetime, hi: datetime, inc: datetime) -> float | None:
    ev = evaluate(
        data,
        indicator_id,
        scope,
        np.array([epoch(lo)]),
        np.array([epoch(hi)]),
        increase_start=epoch(inc) if is_increase(indicator_id) else None,
    )
    return value_of(float(ev.combined.value[0]))


def _level_window(target: Target, f: _Frame, at: datetime) -> tuple[datetime, datetime]:
    """[lo, hi) over which the indicator is read "at" an instant: trailing window for volume ratios,
    [start, at) for increases, the instant itself for levels."""
    if is_volume_ratio(target.indicator):
        return at - f.window, at
    return f.t0, at


def _fetch_target_data(conn: psycopg.Connection, target: Target, scope: Scope, f: _Frame) -> SeriesMap:
    """Readings of the trend window (and the current ratio window), plus for levels and increases each
    series' level at start and first reading after it."""
    ind = target.indicator
    if is_volume_ratio(ind):
        return fetch_indicator_inputs(conn, ind, scope, min(f.trend_from, f.eff - f.window), f.until)
    data = fetch_indicator_inputs(conn, ind, scope, f.trend_from, f.until)
    if f.t0 >= f.trend_from:
        return data
    back = timedelta(seconds=lookback_s(ind))
    edges = fetch_edges(
        conn,
        input_metrics(ind),
        fetch_regions(ind, scope.region),
        f.t0,
        min(f.until, f.trend_from),  # later first readings are in `data` already
        back,
        operator=scope.operator,
    )
    return merge_series(data, edges)


def _seen_since(data: SeriesMap, scope: Scope, since: float) -> bool:
    """Whether the fetched readings already show one in scope at or after `since`."""
    return any(
        len(s) and s.ts[-1] >= since and scope.selects(k, admin_metric=METRICS[k[0]].admin_only)
        for k, s in data.items()
    )


def _has_data_since(conn: psycopg.Connection, target: Target, since: datetime, until: datetime) -> bool:
    """Whether some series in scope has a reading with since <= ts < until (one probe per series)."""
    sql = (
        "SELECT 1 FROM series s CROSS JOIN LATERAL (SELECT 1 FROM observation_point o WHERE o.series_id = s.id"
        " AND o.ts >= %s AND o.ts < %s LIMIT 1) x WHERE s.metric = ANY(%s) AND s.region = ANY(%s)"
    )
    params: list[object] = [since, until, list(input_metrics(target.indicator))]
    params.append(fetch_regions(target.indicator, target.region))
    if target.operator is not None:
        sql += " AND s.operator IN (%s, 'admin')"
        params.append(target.operator)
    return conn.execute(sql + " LIMIT 1", params).fetchone() is not None


def _selected(data: SeriesMap, scope: Scope, metrics_in: set[str] | tuple[str, ...]) -> list[tuple[SeriesKey, Series]]:
    return [
        (k, s)
        for k, s in data.items()
        if k[0] in metrics_in and len(s) and scope.selects(k, admin_metric=METRICS[k[0]].admin_only)
    ]


def _has_start_level(data: SeriesMap, ind: str, scope: Scope, f: _Frame) -> bool:
    """Whether the increase has something to count from: a reported year-to-date flow in scope since the
    target's start (bs5g_new's reported basis counts from zero each year), else some series of the stock
    with a level at the start."""
    flow = INDICATORS[ind].flow
    if flow is not None:
        t0, until = epoch(f.t0), epoch(f.until)
        for _, s in _selected(data, scope, (flow,)):
            if np.any((s.ts >= t0) & (s.ts <= until)):
                return True
    (gauge,) = [m for m in input_metrics(ind) if m != flow]
    at = np.array([epoch(f.t0)])
    return any(
        not math.isnan(float(compute.gauge_levels(s, at, staleness_s(gauge))[0][0]))
        for _, s in _selected(data, scope, (gauge,))
    )


def _newest_by_metric(
    conn: psycopg.Connection, data: SeriesMap, target: Target, scope: Scope, f: _Frame
) -> dict[str, float | None]:
    """Per input metric, the newest reading in scope at or before the judged instant (epoch seconds); metrics
    without one among the fetched readings are looked up (one probe per series)."""
    until = epoch(f.until)
    out: dict[str, float | None] = {}
    for m in input_metrics(target.indicator):
        best: float | None = None
        for _, s in _selected(data, scope, (m,)):
            i = int(np.searchsorted(s.ts, until, side="left")) - 1
            if i >= 0 and (best is None or s.ts[i] > best):
                best = float(s.ts[i])
        out[m] = best
    missing = [m for m, ts in out.items() if ts is None]
    if missing:
        sql = (
            "SELECT s.metric, max(x.ts) FROM series s CROSS JOIN LATERAL ("
            " SELECT o.ts FROM observation_point o WHERE o.series_id = s.id AND o.ts < %s"
            " ORDER BY o.ts DESC LIMIT 1) x"
            " WHERE s.metric = ANY(%s) AND s.region = ANY(%s)"
        )
        params: list[object] = [f.until, missing, fetch_regions(target.indicator, target.region)]
        if target.operator is not None:
            sql += " AND s.operator IN (%s, 'admin')"
            params.append(target.operator)
        for metric_id, ts in conn.execute(sql + " GROUP BY s.metric", params).fetchall():
            out[metric_id] = None if ts is None else ts.timestamp()
    return out


def _trend_points(data: SeriesMap, target: Target, scope: Scope, f: _Frame) -> tuple[list[float], list[float]]:
    """Daily points of the last 90 days on the days some reading arrived (x = day end, epoch seconds), and for
    levels and increases the value in force when the 90 days begin."""
    day = start_of_day((f.trend_from).astimezone(f.t0.tzinfo).date())
    los, his = [], []
    while day < f.until:
        nxt = start_of_day(day.date() + timedelta(days=1))
        los.append(epoch(day))
        his.append(epoch(min(nxt, f.until)))
        day = nxt
    lo, hi = np.array(los), np.array(his)
    metrics_in = set(input_metrics(target.indicator))
    reading_days = np.zeros(lo.shape)
    for k, s in data.items():
        if k[0] in metrics_in and scope.selects(k, admin_metric=METRICS[k[0]].admin_only):
            _, n = compute.window_sums(s.ts, np.ones(len(s)), lo, hi)
            reading_days += n
    if is_volume_ratio(target.indicator):
        ev = evaluate(data, target.indicator, scope, lo, hi)
    else:
        ev = evaluate(data, target.indicator, scope, lo, hi, increase_start=epoch(f.t0))
    xs, ys = [], []
    if not is_volume_ratio(target.indicator) and len(lo):
        # a level in force when the window opens is data of the window too: with monthly figures it is the
        # fourth point that lets the median outvote one typo among the three months
        at_open = evaluate(data, target.indicator, scope, lo[:1], lo[:1], increase_start=epoch(f.t0))
        if not math.isnan(at_open.combined.value[0]):
            xs.append(float(lo[0]))
            ys.append(float(at_open.combined.value[0]))
    for x, y, n in zip(hi, ev.combined.value, reading_days, strict=True):
        if n > 0 and not math.isnan(y):
            xs.append(float(x))
            ys.append(float(y))
    return xs, ys


@owns_transaction
def evaluate_target(conn: psycopg.Connection, target: Target, as_of: datetime | None = None) -> Progress:
    """The target's progress at `as_of` (default now), from observations with ts <= as_of only."""
    progress = _evaluate(conn, target, as_of)
    return progress


def _evaluate(conn: psycopg.Connection, target: Target, as_of: datetime | None) -> Progress:
    f = _Frame(target, aware(as_of) if as_of is not None else now())
    scope = Scope(target.region, target.operator, target.entity)
    ind = target.indicator
    data = _fetch_target_data(conn, target, scope, f)

    actual: float | None = None
    # data since start: levels and increases fetched each series' first reading after start (edges)
    seen = _seen_since(data, scope, epoch(f.t0))
    if f.eff >= f.t0 and (seen or (is_volume_ratio(ind) and _has_data_since(conn, target, f.t0, f.until))):
        lo, hi = _level_window(target, f, f.until)
        actual = _value(data, ind, scope, lo, hi, f.t0)

    baseline = _baseline(conn, target, scope, f, data)
    # an increase is counted from the level at start: without any series' level there, there is nothing
    # to count from (a single reading after start would read as "no increase")
    has_baseline = baseline is not None and (
        not is_increase(ind) or target.baseline is not None or (_has_start_level(data, ind, scope, f))
    )
    goal = _goal(conn, target, scope, f, baseline)
    expected = None
    if goal is not None and baseline is not None:
        fraction = due_fraction(target.start, target.deadline, target.profile, f.eff)
        expected = compute.expected_value(baseline, goal, fraction)

    projected = None
    if actual is not None:
        if f.eff >= f.t1:
            projected = actual
        else:
            xs, ys = _trend_points(data, target, scope, f)
            projected = verdict.clamp_to_range(compute.project(xs, ys, epoch(f.t1)), *verdict.physical_range(ind))

    status = verdict.decide_status(
        actual=actual,
        expected=expected,
        projected=projected,
        goal=goal,
        baseline=baseline,
        comparator=target.comparator,
        tolerance=target.tolerance,
        deadline_passed=f.as_of >= f.t1,
        early_achievement=verdict.achievable_early(ind),
        has_baseline=has_baseline,
    )
    gap = None
    if actual is not None and goal is not None:
        gap = (goal - actual) if target.comparator in (">=", ">") else (actual - goal)
    newest_by_metric = _newest_by_metric(conn, data, target, scope, f)
    data_as_of = verdict.newest(newest_by_metric)

    progress = Progress(
        target_id=target.id,
        title=target.title,
        source=target.source,
        indicator=ind,
        unit=INDICATORS[ind].unit,
        region=target.region,
        operator=target.operator,
        comparator=target.comparator,
        goal=goal,
        baseline=baseline,
        actual=actual,
        expected=expected,
        projected=projected,
        gap=gap,
        status=status,
        met_now=actual is not None and goal is not None and compute.meets(actual, goal, target.comparator),
        data_as_of=None if data_as_of is None else datetime.fromtimestamp(data_as_of, f.t0.tzinfo),
        stale=verdict.is_stale(newest_by_metric, epoch(f.eff)),
        as_of=f.as_of,
        start=target.start,
        deadline=target.deadline,
        basis=_basis(data, ind, scope, f) if actual is not None else None,
    )
    if status not in ("achieved", "no_data") and goal is not None:
        _add_laggards(progress, target, scope, f, data, baseline, expected, goal)
    return progress


def _basis(data: SeriesMap, indicator_id: str, scope: Scope, f: _Frame) -> str | None:
    """Which basis the actual rests on, for an indicator with more than one (issue 14: bs5g_new)."""
    if not INDICATORS[indicator_id].has_basis:
        return None
    return evaluate(
        data, indicator_id, scope, np.array([epoch(f.t0)]), np.array([epoch(f.until)]), increase_start=epoch(f.t0)
    ).basis


def _baseline(conn: psycopg.Connection, target: Target, scope: Scope, f: _Frame, data: SeriesMap) -> float | None:
    """The target's baseline: given, 0 for increases, else the value at start (the trailing window before
    start for ratios), falling back to the first value after start known at as_of."""
    known = known_baseline(target)
    if known is not None:
        return known
    ind = target.indicator
    if is_volume_ratio(ind):
        base_data = fetch_indicator_inputs(conn, ind, scope, f.t0 - f.window, min(f.until, f.t0 + f.window))
        before = _value(base_data, ind, scope, f.t0 - f.window, f.t0, f.t0)
        if before is not None:
            return before
        # nothing before start: the first window after start that holds data (known at as_of)
        first = _first_reading_after(conn, target, f.t0, f.until)
        if first is None:
            return None
        opens = first - EPSILON  # just before the first reading: it counts whether it opens or closes its interval
        end = min(f.until, opens + f.window)
        base_data = fetch_indicator_inputs(conn, ind, scope, opens, end)
        return _value(base_data, ind, scope, opens, end, f.t0)
    at_start = _value(data, ind, scope, f.t0, f.t0, f.t0)
    if at_start is not None:
        return at_start
    # first reading after start: the level on the first day some series reported
    first_ts = min(
        (
            float(s.ts[np.searchsorted(s.ts, epoch(f.t0))])
            for k, s in data.items()
            if _has_after(s, epoch(f.t0), epoch(f.until)) and scope.selects(k, admin_metric=METRICS[k[0]].admin_only)
        ),
        default=None,
    )
    if first_ts is None:
        return None
    day_end = epoch(start_of_day(datetime.fromtimestamp(first_ts, f.t0.tzinfo).date() + timedelta(days=1)))
    return _value(data, ind, scope, f.t0, datetime.fromtimestamp(min(day_end, epoch(f.until)), f.t0.tzinfo), f.t0)


def _first_reading_after(conn: psycopg.Connection, target: Target, since: datetime, until: datetime) -> datetime | None:
    """The earliest reading in scope with since <= ts < until (one probe per series)."""
    sql = (
        "SELECT min(x.ts) FROM series s CROSS JOIN LATERAL ("
        " SELECT o.ts FROM observation_point o WHERE o.series_id = s.id AND o.ts >= %s AND o.ts < %s"
        " ORDER BY o.ts LIMIT 1) x"
        " WHERE s.metric = ANY(%s) AND s.region = ANY(%s)"
    )
    params: list[object] = [since, until, list(input_metrics(target.indicator))]
    params.append(fetch_regions(target.indicator, target.region))
    if target.operator is not None:
        sql += " AND s.operator IN (%s, 'admin')"
        params.append(target.operator)
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _has_after(s: Series, lo: float, hi: float) -> bool:
    i = int(np.searchsorted(s.ts, lo))
    return i < len(s) and s.ts[i] < hi


def _goal(conn: psycopg.Connection, target: Target, scope: Scope, f: _Frame, baseline: float | None) -> float | None:
    known = known_goal(target, baseline)
    if known is not None or target.goal_indicator is None:
        return known
    gi = target.goal_indicator
    gdata = fetch_indicator_inputs(conn, gi, scope, f.t0, f.until)
    lo = f.until - f.window if is_volume_ratio(gi) else f.t0
    return _value(gdata, gi, scope, lo, f.until, f.t0)


# -- laggards -----------------------------------------------------------------------------------------------


def _add_laggards(
    p: Progress,
    target: Target,
    scope: Scope,
    f: _Frame,
    data: SeriesMap,
    baseline: float | None,
    expected: float | None,
    goal: float,
) -> None:
    comparator: Comparator = target.comparator
    ind = target.indicator
    parts_city = (
        [(str(c), region_name(c), Scope(c, scope.operator)) for c in cities_of(scope.region)]
        if cities_of(scope.region) != (scope.region,)
        else []
    )
    ops = sorted({k[2] for k in data if k[2] not in ("admin", "all")}) if scope.operator is None else []
    parts_op = [(op, _operator_name(op), Scope(scope.region, op)) for op in ops]
    lo_dt, hi_dt = _level_window(target, f, f.until)
    lo, hi = np.array([epoch(lo_dt)]), np.array([epoch(hi_dt)])
    inc = epoch(f.t0)

    def attribute(parts: list[tuple[str, str, Scope]]) -> tuple[list[Laggard], Coverage | None]:
        """The laggards among the parts that reported (a silent part has no figure to blame), and how
        many of the parts did report."""
        if not parts:
            return [], None
        actual_by: dict[str, float] = {}
        names = {k: n for k, n, _ in parts}
        shortfalls: dict[str, float] = {}
        if INDICATORS[ind].derivation == "count_cities":
            for key, _, sc in parts:
                v = evaluate(data, ind, sc, lo, hi).combined.value[0]
                if math.isnan(v):
                    continue
                actual_by[key] = float(v)
                shortfalls[key] = 1.0 if actual_by[key] < 1 else 0.0
        elif is_volume_ratio(ind):
            num_by, den_by = {}, {}
            for key, _, sc in parts:
                ev = evaluate(data, ind, sc, lo, hi)
                v = ev.combined.value[0]
                if math.isnan(v):
                    continue
                actual_by[key] = float(v)
                assert ev.numerator is not None and ev.denominator is not None
                num_by[key], den_by[key] = float(ev.numerator[0]), float(ev.denominator[0])
            shortfalls = compute.ratio_shortfalls(num_by, den_by, goal, INDICATORS[ind].scale, comparator)
        elif INDICATORS[ind].derivation in ("metric", "increase"):
            gauge = INDICATORS[ind].inputs[0]
            weight_by: dict[str, float] = {}
            change_by: dict[str, float] = {}
            for key, _, sc in parts:
                v = evaluate(data, ind, sc, lo, hi, increase_start=inc).combined.value[0]
                if math.isnan(v):
                    continue
                actual_by[key] = float(v)
                w = evaluate(data, gauge, sc, np.array([inc]), np.array([inc])).combined.value[0]
                weight_by[key] = 0.0 if math.isnan(w) else float(w)
                change_by[key] = float(v) if is_increase(ind) else float(v) - weight_by[key]
            due = (expected if expected is not None else goal) - (baseline or 0.0)
            shortfalls = compute.additive_shortfalls(change_by, weight_by, due, comparator)
        shares = compute.shortfall_shares(shortfalls)
        ranked = sorted(shares.items(), key=lambda kv: -kv[1])[:MAX_LAGGARDS]
        laggards = [Laggard(key=k, name=names[k], actual=actual_by.get(k), share_of_shortfall=s) for k, s in ranked]
        return laggards, Coverage(reported=len(actual_by), of=len(parts))

    p.laggard_cities, p.cities_reporting = attribute(parts_city)
    p.laggard_operators, p.operators_reporting = attribute(parts_op)


# -- many targets, storage ----------------------------------------------------------------------------------


@owns_transaction
def evaluate_targets(
    conn: psycopg.Connection, as_of: datetime | None = None, target_ids: list[str] | None = None
) -> list[Progress]:
    """Progress of every active target (or of the named ones, active or not), in deadline order."""
    at = aware(as_of) if as_of is not None else now()
    if target_ids:
        targets = []
        for tid in target_ids:
            t = get_target(conn, tid)
            if t is None:
                raise KeyError(f"no target {tid!r}; `infrawatch targets list` shows the known ids")
            targets.append(t)
    else:
        targets = list_targets(conn)
    out = [_evaluate(conn, t, at) for t in targets]
    return out


@owns_transaction
def store_progress(conn: psycopg.Connection, progresses: list[Progress]) -> None:
    """Replace each target's latest snapshot in table target_progress, and republish its expected
    trajectory with the baseline and goal of this evaluation (a measured baseline, a goal read from
    another indicator)."""
    with conn.transaction():
        targets = {t.id: t for t in list_targets(conn, include_retired=True)}
        for p in progresses:
            if p.target_id in targets:
                publish_trajectory(conn, targets[p.target_id], p.baseline, p.goal)
            laggards = {
                "cities": [lg.model_dump() for lg in p.laggard_cities],
                "operators": [lg.model_dump() for lg in p.laggard_operators],
                "cities_reporting": p.cities_reporting.model_dump() if p.cities_reporting else None,
                "operators_reporting": p.operators_reporting.model_dump() if p.operators_reporting else None,
            }
            conn.execute(
                """
                INSERT INTO target_progress (target_id, evaluated_at, as_of, status, actual, expected, projected,
                                             goal, baseline, gap, unit, deadline, laggards, met_now, data_as_of, stale)
                VALUES (%s, now(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)
                ON CONFLICT (target_id) DO UPDATE SET
                    evaluated_at = now(), as_of = EXCLUDED.as_of, status = EXCLUDED.status,
                    actual = EXCLUDED.actual, expected = EXCLUDED.expected, projected = EXCLUDED.projected,
                    goal = EXCLUDED.goal, baseline = EXCLUDED.baseline, gap = EXCLUDED.gap,
                    unit = EXCLUDED.unit, deadline = EXCLUDED.deadline, laggards = EXCLUDED.laggards,
                    met_now = EXCLUDED.met_now, data_as_of = EXCLUDED.data_as_of, stale = EXCLUDED.stale
                """,
                (
                    p.target_id,
                    p.as_of,
                    p.status,
                    p.actual,
                    p.expected,
                    p.projected,
                    p.goal,
                    p.baseline,
                    p.gap,
                    p.unit,
                    p.deadline,
                    json.dumps(laggards, ensure_ascii=False),
                    p.met_now,
                    p.data_as_of,
                    p.stale,
                ),
            )
