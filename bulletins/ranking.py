"""Pure ranking and summary logic of a bulletin: status counts, shortfall shares and growth rankings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: The order statuses are counted and listed in, with their Chinese names.
STATUS_ORDER = ("achieved", "on_track", "at_risk", "off_track", "missed", "no_data")
STATUS_ZH = {
    "achieved": "已完成",
    "on_track": "进度正常",
    "at_risk": "存在风险",
    "off_track": "进度滞后",
    "missed": "未完成",
    "no_data": "暂无数据",
}


@dataclass(frozen=True, slots=True)
class RankRow:
    rank: int | None  # None: no figure, listed after the ranked ones
    key: str
    name: str
    value: float | None
    start_value: float | None = None
    change: float | None = None
    rate: float | None = None


def status_counts(statuses: Iterable[str]) -> dict[str, int]:
    """How many targets are in each status, every status present (0 when none)."""
    c = Counter(statuses)
    return {s: c.get(s, 0) for s in STATUS_ORDER}


def summary_sentence(counts: Mapping[str, int], period_zh: str) -> str:
    """The bulletin's opening sentence: the number of targets in each status."""
    total = sum(counts.values())
    if total == 0:
        return f"截至{period_zh}末，暂无纳入监测的规划目标。"
    parts = [f"{STATUS_ZH[s]}{counts[s]}项" for s in STATUS_ORDER if counts.get(s)]
    return f"截至{period_zh}末，纳入监测的规划目标共{total}项，其中" + "、".join(parts) + "。"


def rank_shares(shares: Sequence[tuple[str, str, float | None, float | None]]) -> list[RankRow]:
    """(key, name, share_of_shortfall, actual) → rows ranked by share, largest first; no share last."""
    ordered = sorted(shares, key=lambda s: (s[2] is None, -(s[2] or 0.0), s[0]))
    return [
        RankRow(rank=i + 1 if share is not None else None, key=k, name=n, value=share, start_value=actual)
        for i, (k, n, share, actual) in enumerate(ordered)
    ]


def rank_growth(
    parts: Sequence[tuple[str, str]],
    start: Mapping[str, float | None],
    end: Mapping[str, float | None],
    *,
    lower_is_better: bool = False,
    change_only: Mapping[str, float | None] | None = None,
) -> list[RankRow]:
    """Every part ranked by its change over the period (end − start), best first; parts without both
    figures are listed last without a rank. `change_only` gives the change directly (increases within the
    period), with `end` as the value shown."""
    rows: list[RankRow] = []
    for key, name in parts:
        s, e = start.get(key), end.get(key)
        if change_only is not None:
            ch = change_only.get(key)
        else:
            ch = e - s if e is not None and s is not None else None
        rate = ch / s if ch is not None and s not in (None, 0.0) else None
        rows.append(RankRow(rank=None, key=key, name=name, value=e, start_value=s, change=ch, rate=rate))
    sign = 1.0 if lower_is_better else -1.0
    rows.sort(key=lambda r: (r.change is None, sign * (r.change or 0.0), r.key))
    out = []
    n = 0
    for r in rows:
        if r.change is not None:
            n += 1
        out.append(
            RankRow(
                rank=n if r.change is not None else None,
                key=r.key,
                name=r.name,
                value=r.value,
                start_value=r.start_value,
                change=r.change,
                rate=r.rate,
            )
        )
    return out
