"""Plan targets (docs/interface.md §8): the model, the default set shipped as YAML, and their storage."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from metrics.db import owns_transaction
from metrics.trajectory import publish_known_trajectory
from reference.catalogue import INDICATORS
from reference.operators import is_valid_entity_id
from reference.regions import PROVINCE, REGIONS, unknown_region_message

DEFAULT_TARGETS_FILE: Path = Path(__file__).with_name("default_targets.yaml")


class Target(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    title: str
    source: str = ""
    #: How an ambiguous text is read (which series, which count, what "基本" means), where it needs saying.
    interpretation: str | None = None
    indicator: str
    region: int = PROVINCE
    operator: str | None = None
    entity: str | None = None  # a programme (programme_count) or milestone (milestone) id
    comparator: Literal[">=", ">", "<=", "<"]
    goal: float | None = None  # a number, or
    goal_indicator: str | None = None  # another indicator (物超人: population), or
    goal_relative: float | None = None  # a relative change from the baseline (+0.20 = +20 %)
    start: date
    deadline: date  # Asia/Shanghai dates; deadline = end of that day
    baseline: float | None = None  # None = the indicator's value at start
    profile: list[float] | None = None  # monthly cumulative fractions from start's month, instead of a line
    tolerance: float = 0.05
    window_days: int = Field(default=30, ge=1, le=366)  # trailing window for ratios of volumes
    active: bool = True

    @model_validator(mode="after")
    def _check(self) -> Target:
        if self.indicator not in INDICATORS:
            raise ValueError(f"unknown indicator {self.indicator!r}; known: {', '.join(sorted(INDICATORS))}")
        if self.goal_indicator is not None and self.goal_indicator not in INDICATORS:
            raise ValueError(f"unknown goal_indicator {self.goal_indicator!r}")
        if self.region not in REGIONS:
            raise ValueError(unknown_region_message(str(self.region)))
        if self.entity is not None and not is_valid_entity_id(self.entity):
            raise ValueError(f"entity {self.entity!r} must match [A-Za-z0-9_.:-]{{1,64}}")
        needs = {"programme_count", "milestone"}
        if self.indicator in needs and not self.entity:
            raise ValueError(f"a {self.indicator} target names its entity (the programme or milestone id)")
        goals = [g is not None for g in (self.goal, self.goal_indicator, self.goal_relative)]
        if sum(goals) != 1:
            raise ValueError("give exactly one of goal (a number), goal_indicator or goal_relative")
        if self.deadline < self.start:
            raise ValueError(f"deadline {self.deadline} is before start {self.start}")
        if self.profile is not None:
            if not self.profile or any(b < a for a, b in zip(self.profile, self.profile[1:], strict=False)):
                raise ValueError("profile must be non-decreasing cumulative fractions, one per month")
            if any(f < 0 or f > 1 for f in self.profile):
                raise ValueError("profile fractions must lie in [0, 1]")
        if not 0 <= self.tolerance <= 1:
            raise ValueError("tolerance is a share of the required change, between 0 and 1")
        return self


def describe_errors(exc: ValidationError) -> str:
    """A pydantic validation error on one line: `field: message; …`."""
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


_COLUMNS = (
    "id, title, source, indicator, region, operator, comparator, goal, goal_indicator, goal_relative,"
    " start_date, deadline, baseline, profile, tolerance, window_days, active, entity, interpretation"
)


def _row_to_target(row: tuple[Any, ...]) -> Target:
    keys = [c.strip() for c in _COLUMNS.split(",")]
    d = dict(zip(keys, row, strict=True))
    d["start"] = d.pop("start_date")
    return Target(**d)


def read_targets_file(path: Path = DEFAULT_TARGETS_FILE) -> list[Target]:
    """Targets from a YAML file: a list, or a mapping with a `targets` list."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read targets file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"targets file {path} is not valid YAML: {exc}") from None
    items = doc.get("targets") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ValueError(f"targets file {path} must hold a list of targets (or a mapping with `targets:`)")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Target.model_validate(item))
        except ValidationError as exc:
            ident = item.get("id", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
            raise ValueError(f"target {ident} in {path}: {describe_errors(exc)}") from None
    return out


@owns_transaction
def upsert_target(conn: psycopg.Connection, target: Target) -> bool:
    """Insert or update a target and publish its expected trajectory; True if it was created."""
    row = conn.execute(
        f"""
        INSERT INTO target ({_COLUMNS})
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO UPDATE SET
            title = EXCLUDED.title, source = EXCLUDED.source, indicator = EXCLUDED.indicator,
            region = EXCLUDED.region, operator = EXCLUDED.operator, comparator = EXCLUDED.comparator,
            goal = EXCLUDED.goal, goal_indicator = EXCLUDED.goal_indicator, goal_relative = EXCLUDED.goal_relative,
            start_date = EXCLUDED.start_date, deadline = EXCLUDED.deadline, baseline = EXCLUDED.baseline,
            profile = EXCLUDED.profile, tolerance = EXCLUDED.tolerance, window_days = EXCLUDED.window_days,
            active = EXCLUDED.active, entity = EXCLUDED.entity, interpretation = EXCLUDED.interpretation,
            updated_at = now()
        RETURNING (xmax = 0)
        """,
        (
            target.id,
            target.title,
            target.source,
            target.indicator,
            target.region,
            target.operator,
            target.comparator,
            target.goal,
            target.goal_indicator,
            target.goal_relative,
            target.start,
            target.deadline,
            target.baseline,
            target.profile,
            target.tolerance,
            target.window_days,
            target.active,
            target.entity,
            target.interpretation,
        ),
    ).fetchone()
    publish_known_trajectory(conn, target)
    return bool(row and row[0])


@owns_transaction
def load_targets(conn: psycopg.Connection, path: Path = DEFAULT_TARGETS_FILE) -> int:
    """Load (insert or update) every target of a YAML file; returns how many were loaded."""
    targets = read_targets_file(path)
    for t in targets:
        upsert_target(conn, t)
    return len(targets)


@owns_transaction
def list_targets(conn: psycopg.Connection, *, include_retired: bool = False) -> list[Target]:
    sql = f"SELECT {_COLUMNS} FROM target"
    if not include_retired:
        sql += " WHERE active"
    sql += " ORDER BY deadline, id"
    rows = conn.execute(sql).fetchall()
    return [_row_to_target(r) for r in rows]


@owns_transaction
def get_target(conn: psycopg.Connection, target_id: str) -> Target | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM target WHERE id = %s", (target_id,)).fetchone()
    return _row_to_target(row) if row else None


@owns_transaction
def retire_target(conn: psycopg.Connection, target_id: str) -> bool:
    """Set a target inactive (kept for history); False if there is no such target."""
    cur = conn.execute("UPDATE target SET active = false, updated_at = now() WHERE id = %s", (target_id,))
    return cur.rowcount > 0


@owns_transaction
def publish_trajectories(conn: psycopg.Connection) -> int:
    """Republish every target's expected trajectory from what is known now (after a schema upgrade or a
    change of the plans' time zone); returns the number of targets with one."""
    return sum(publish_known_trajectory(conn, t) > 0 for t in list_targets(conn, include_retired=True))
