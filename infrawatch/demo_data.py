"""What `infrawatch demo` feeds and tracks: its plan year (the current one), the simulator settings that move
the `demo` scenario there, and the demo targets — the seed plan's targets re-based to that year and marked as
demo targets beside the shipped originals (whose ids never change)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import yaml

from core.planzone import plan_tz
from metrics.targets import DEFAULT_TARGETS_FILE, Target, read_targets_file

SCENARIO = "demo"
PLAN_ZONE = plan_tz()  # INFRAWATCH_TIMEZONE
#: History uses hourly data-centre meter readings so that the first start is quick; live ones are 5-minutely.
HISTORY_SETTINGS = ("data_centres.cadence=1h",)
#: The shipped targets the demo re-bases: the 2023 plan and Ganzhou's plan to 2025.
REBASED = re.compile(r"^(jx-2023|gz-2025)-")


def plan_year(now: datetime) -> int:
    """The calendar year `now` falls in, in the plans' time zone."""
    return now.astimezone(PLAN_ZONE).year


def history_start(year: int) -> date:
    """The first report the demo sends: the previous December's month-end report, the plan year's baseline."""
    return date(year - 1, 12, 31)


def scenario_settings(year: int) -> list[str]:
    """`simulate --set` pairs that move the demo scenario to `year`."""
    return [f"plan_year={year}", f"start={history_start(year).isoformat()}", f"end={year}-12-31"]


def demo_target_id(original: str, year: int) -> str:
    """`jx-2023-5g-new` → `demo-jx-2026-5g-new`."""
    return "demo-" + REBASED.sub(lambda m: f"{m[1][:2]}-{year}-", original)


def demo_targets(year: int, shipped: Path = DEFAULT_TARGETS_FILE) -> list[Target]:
    """The shipped 2023 and Ganzhou targets re-based to 1 January – 31 December of `year`."""
    out = []
    for t in read_targets_file(shipped):
        if not REBASED.match(t.id):
            continue
        out.append(
            t.model_copy(
                update={
                    "id": demo_target_id(t.id, year),
                    "title": f"[demo {year}] {t.title.replace('2023', str(year))}",
                    "source": f"demo target: {t.id} re-based to {year} ({t.source})",
                    "start": date(year, 1, 1),
                    "deadline": date(year, 12, 31),
                }
            )
        )
    return out


def write_targets_file(path: Path, targets: list[Target]) -> Path:
    """The demo targets as a targets file (`infrawatch targets load FILE` reads it too)."""
    items = [t.model_dump(mode="json", exclude_defaults=True, exclude={"active"}) for t in targets]
    for item, t in zip(items, targets, strict=True):
        item.setdefault("comparator", t.comparator)
    path.write_text(
        "# The demo's targets: the seed plans re-based to the current year (written by infrawatch demo)\n"
        + yaml.safe_dump({"targets": items}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return path
