"""The alert life cycle as a pure function: pending → firing → resolved, anti-flap, reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.lifecycle import Finding, advance, scope_key
from alerts.rules import Rule, RulesFileError, parse_duration, read_rules_file

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def finding(value: float = 1.0) -> Finding:
    return Finding("operator=cmcc", {"operator": "cmcc"}, value, "cmcc is silent", "warning")


def test_condition_fires_only_after_its_for_duration() -> None:
    s1 = advance(None, finding(), T0, for_s=600, resolve_after_s=0, repeat_s=0)
    assert s1.alert and s1.alert.state == "pending" and s1.notify is None
    s2 = advance(s1.alert, finding(), T0 + 9 * MIN, for_s=600, resolve_after_s=0, repeat_s=0)
    assert s2.alert and s2.alert.state == "pending" and s2.notify is None
    s3 = advance(s2.alert, finding(), T0 + 10 * MIN, for_s=600, resolve_after_s=0, repeat_s=0)
    assert s3.alert and s3.alert.state == "firing" and s3.notify == "firing"
    assert s3.alert.fired_at == T0 + 10 * MIN and s3.alert.started_at == T0


def test_zero_for_fires_at_once_and_firing_again_notifies_nothing() -> None:
    s1 = advance(None, finding(), T0, for_s=0, resolve_after_s=0, repeat_s=0)
    assert s1.alert and s1.alert.state == "firing" and s1.notify == "firing"
    s2 = advance(s1.alert, finding(2.0), T0 + MIN, for_s=0, resolve_after_s=0, repeat_s=0)
    assert s2.alert and s2.alert.state == "firing" and s2.notify is None and s2.alert.value == 2.0


def test_pending_that_clears_resolves_without_notification() -> None:
    s1 = advance(None, finding(), T0, for_s=600, resolve_after_s=0, repeat_s=0)
    s2 = advance(s1.alert, None, T0 + MIN, for_s=600, resolve_after_s=0, repeat_s=0)
    assert s2.alert and s2.alert.state == "resolved" and s2.alert.fired_at is None and s2.notify is None


def test_resolve_delay_keeps_a_flapping_alert_firing() -> None:
    firing = advance(None, finding(), T0, for_s=0, resolve_after_s=3600, repeat_s=0).alert
    # clears for 30 min, comes back: still the same firing alert, no notification either way
    c1 = advance(firing, None, T0 + 10 * MIN, for_s=0, resolve_after_s=3600, repeat_s=0)
    assert c1.alert and c1.alert.state == "firing" and c1.alert.clear_since == T0 + 10 * MIN and c1.notify is None
    back = advance(c1.alert, finding(), T0 + 40 * MIN, for_s=0, resolve_after_s=3600, repeat_s=0)
    assert back.alert and back.alert.state == "firing" and back.alert.clear_since is None and back.notify is None
    # clears for good: resolved only once an hour has passed without the condition
    c2 = advance(back.alert, None, T0 + 50 * MIN, for_s=0, resolve_after_s=3600, repeat_s=0)
    c3 = advance(c2.alert, None, T0 + 109 * MIN, for_s=0, resolve_after_s=3600, repeat_s=0)
    assert c3.alert and c3.alert.state == "firing" and c3.notify is None
    c4 = advance(c3.alert, None, T0 + 110 * MIN, for_s=0, resolve_after_s=3600, repeat_s=0)
    assert c4.alert and c4.alert.state == "resolved" and c4.notify == "resolved"


def test_reminder_comes_after_the_repeat_interval_unless_acknowledged() -> None:
    firing = advance(None, finding(), T0, for_s=0, resolve_after_s=0, repeat_s=3600).alert
    early = advance(firing, finding(), T0 + 59 * MIN, for_s=0, resolve_after_s=0, repeat_s=3600)
    assert early.notify is None
    due = advance(early.alert, finding(), T0 + 60 * MIN, for_s=0, resolve_after_s=0, repeat_s=3600)
    assert due.notify == "reminder" and due.alert and due.alert.last_notified_at == T0 + 60 * MIN
    assert firing is not None
    acked = advance(
        firing.__class__(**{**{k: getattr(firing, k) for k in firing.__dataclass_fields__}, "acknowledged_at": T0}),
        finding(),
        T0 + 120 * MIN,
        for_s=0,
        resolve_after_s=0,
        repeat_s=3600,
    )
    assert acked.notify is None


def test_scope_key_is_stable_and_skips_empty_parts() -> None:
    assert scope_key({"region": 360100, "operator": "cmcc", "entity": None}) == "operator=cmcc,region=360100"


def test_durations_read_as_seconds() -> None:
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("10m") == 600
    assert parse_duration(90) == 90
    with pytest.raises(ValueError, match="cannot read duration"):
        parse_duration("soon")


def test_rule_of_a_kind_without_its_fields_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="needs `comparator` and `value`"):
        Rule.model_validate({"id": "x", "kind": "threshold", "indicator": "dc_pue"})
    with pytest.raises(ValueError, match="`metric` must be known"):
        Rule.model_validate({"id": "x", "kind": "stale", "metric": "nope"})


def test_shipped_rules_cover_every_default_target_and_metric(tmp_path) -> None:
    from reference.catalogue import METRICS

    rules = read_rules_file()
    targets = {r.target for r in rules if r.kind == "target"}
    from metrics.targets import read_targets_file

    assert targets == {t.id for t in read_targets_file()}  # every default target has its rule
    (stale,) = [r for r in rules if r.kind == "stale"]  # one rule for every metric, each at its cadence
    assert stale.metric is None and stale.group_by == ["operator"]
    assert {stale.effective_cadence_s(m) for m in METRICS} == {m.cadence_s for m in METRICS.values()}
    pue = next(r for r in rules if r.kind == "threshold")
    assert (pue.indicator, pue.comparator, pue.value, pue.window_s) == ("dc_pue", ">", 1.5, 7 * 86400)
    quality = next(r for r in rules if r.kind == "quality")
    assert quality.limit == 0.05 and quality.window_s == 86400
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - {id: a, kind: quality, limit: 0.1}\n  - {id: a, kind: quality, limit: 0.2}\n")
    with pytest.raises(RulesFileError, match="appears twice"):
        read_rules_file(bad)
