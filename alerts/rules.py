"""Alert rules: the pydantic model of the four rule kinds (docs/interface.md §9) and the YAML rules-file loader."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from metrics.verdict import STALE_FACTOR
from reference.catalogue import INDICATORS, METRICS

RuleKind = Literal["target", "threshold", "stale", "quality"]
Severity = Literal["info", "warning", "critical"]
Comparator = Literal[">", ">=", "<", "<="]

DEFAULT_RULES_FILE = Path(__file__).parent / "rules.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
#: scope labels alerts can be grouped by
GROUP_LABELS = ("operator", "region", "metric", "target", "entity")


def parse_duration(value: Any) -> int:
    """Seconds from an int/float or a string such as "90s", "10m", "1h", "7d"."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '10m', '7d'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return int(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"cannot read duration {value!r}: use seconds or a string like '90s', '10m', '1h', '7d'")
    return int(float(m.group(1)) * _UNIT_S[m.group(2)])


def severity_rank(severity: str) -> int:
    return _SEVERITY_RANK.get(severity, 0)


class Rule(BaseModel):
    """One alert rule. Fields after `channels` apply to some kinds only (see docs/alerts.md)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    kind: RuleKind
    title: str = ""
    severity: Severity = "warning"
    enabled: bool = True
    #: the condition must hold this long (pending) before the alert fires
    for_s: int = Field(0, validation_alias=AliasChoices("for_s", "for"))
    #: the condition must be absent this long before a firing alert resolves (anti-flap)
    resolve_after_s: int = Field(0, validation_alias=AliasChoices("resolve_after_s", "resolve_after"))
    #: remind while a group has unacknowledged firing alerts, every this many seconds; 0 = no reminders
    repeat_s: int = Field(0, validation_alias=AliasChoices("repeat_s", "repeat", "repeat_interval"))
    #: alerts are notified by group (Alertmanager's vocabulary): the scope labels that make a group
    group_by: list[str] = ["operator"]
    #: how long a new group waits for more alerts before its first message
    group_wait_s: int = Field(0, validation_alias=AliasChoices("group_wait_s", "group_wait"))
    #: at most one message per group in this interval (later changes wait for the next one)
    group_interval_s: int = Field(300, validation_alias=AliasChoices("group_interval_s", "group_interval"))
    #: channel names; None = every enabled channel
    channels: list[str] | None = None

    # kind: target
    target: str | None = None
    statuses: list[Literal["at_risk", "off_track", "missed"]] = ["at_risk", "off_track", "missed"]
    severity_by_status: dict[str, Severity] = {"at_risk": "warning", "off_track": "critical", "missed": "critical"}

    # kind: threshold
    indicator: str | None = None
    region: int | None = None
    operator: str | None = None
    #: evaluate separately for each entity (data centre) having `entity_metric`, each city, or each operator
    each: Literal["entity", "region", "operator"] | None = None
    entity_metric: str | None = None
    comparator: Comparator | None = None
    value: float | None = None
    interval: Literal["1h", "1d"] = "1d"
    #: every complete bucket of this window (ending at the last complete bucket) must cross the value
    window_s: int = Field(0, validation_alias=AliasChoices("window_s", "window"))

    # kind: stale (metric optional = every metric, each at its cadence) and quality (operator optional)
    metric: str | None = None
    #: expected cadence; None = the metric's cadence_s from the catalogue
    cadence_s: int | None = Field(None, validation_alias=AliasChoices("cadence_s", "cadence"))
    #: silent longer than cadence × this is stale (the catalogue's convention is 2)
    cadence_factor: float = STALE_FACTOR

    # kind: quality
    limit: float | None = None  # a share 0..1 (0.05 = 5 %)
    min_received: int = 20  # fewer observations in the window: too few to judge

    @field_validator(
        "for_s", "resolve_after_s", "repeat_s", "window_s", "group_wait_s", "group_interval_s", mode="before"
    )
    @classmethod
    def _duration(cls, v: Any) -> int:
        return parse_duration(v)

    @field_validator("cadence_s", mode="before")
    @classmethod
    def _optional_duration(cls, v: Any) -> int | None:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _kind_fields(self) -> Rule:
        problems: list[str] = []
        if self.kind == "target" and not self.target:
            problems.append("a target rule needs `target` (a target id)")
        if self.kind == "threshold":
            if not self.indicator or self.indicator not in INDICATORS:
                problems.append(f"a threshold rule needs a known `indicator` (one of {', '.join(sorted(INDICATORS))})")
            if self.comparator is None or self.value is None:
                problems.append("a threshold rule needs `comparator` and `value`")
            if self.each == "entity" and not self.entity_metric:
                problems.append("`each: entity` needs `entity_metric` (the metric whose entities to walk)")
        if self.kind == "stale":
            if self.metric is not None and self.metric not in METRICS:
                problems.append(
                    f"a stale rule's `metric` must be known (one of {', '.join(sorted(METRICS))}), "
                    "or omitted for every metric"
                )
            if self.cadence_factor <= 0:
                problems.append("`cadence_factor` must be positive")
        unknown = [g for g in self.group_by if g not in GROUP_LABELS]
        if unknown:
            problems.append(f"unknown group_by label {', '.join(unknown)}: use {', '.join(GROUP_LABELS)}")
        if self.kind == "quality" and (self.limit is None or not 0 <= self.limit <= 1):
            problems.append("a quality rule needs `limit`, a share between 0 and 1 (0.05 = 5 %)")
        if problems:
            raise ValueError(f"rule {self.id!r}: " + "; ".join(problems))
        return self

    def effective_cadence_s(self, metric: str | None = None) -> int:
        """The cadence a feed of `metric` (default: the rule's) is judged by: the rule's, else the catalogue's."""
        if self.cadence_s:
            return self.cadence_s
        m = metric or self.metric
        return METRICS[m].cadence_s if m in METRICS else 86400

    def display_title(self) -> str:
        return self.title or self.id


class RulesFileError(ValueError):
    """The rules file cannot be used; the message says which rule and what is wrong."""


def read_rules_file(path: Path = DEFAULT_RULES_FILE) -> list[Rule]:
    """Parse and validate a rules YAML file: `rules: [ {id, kind, ...}, ... ]`."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RulesFileError(f"cannot read rules file {path}: {exc}") from exc
    items = doc.get("rules", []) if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise RulesFileError(f"{path}: expected a list under `rules:`")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        try:
            rule = Rule.model_validate(item)
        except ValueError as exc:
            raise RulesFileError(f"{path}: rule #{i + 1} is invalid: {exc}") from exc
        if rule.id in seen:
            raise RulesFileError(f"{path}: rule id {rule.id!r} appears twice; ids must be unique")
        seen.add(rule.id)
        rules.append(rule)
    return rules
