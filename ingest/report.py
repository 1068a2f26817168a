"""What the pipeline says back: rejections and the per-batch report (and the one place reports are summed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ingest.text import RAW_KEEP_CHARS, storable

_TEXT_LIMITS = {"location": 1000, "field": 200, "reason": 2000, "raw": 2 * RAW_KEEP_CHARS}


@dataclass(slots=True)
class Rejection:
    """One input refused, with where it was, which field, why, and the raw input."""

    location: str  # "index 3", "line 7", or "payload"
    field: str  # the column or key at fault ("" when the whole item is)
    reason: str
    raw: str
    index: int | None = None  # position in a message or request
    line: int | None = None  # line number in a file (header = line 1)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every text of a rejection is storable (PostgreSQL text and jsonb, JSON answers, MQTT reports),
        # whatever the input held: NUL, control characters and lone surrogates are escaped, long raw cut.
        limit = _TEXT_LIMITS.get(name)
        if limit is not None and isinstance(value, str):
            value = storable(value, limit)
        object.__setattr__(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class BatchReport:
    """One committed batch's counts and rejections, or a sum of several (`+`, `+=`, `BatchReport.sum`)."""

    batch_id: int | None = None
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    revised: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def __iadd__(self, other: BatchReport) -> BatchReport:
        """The one place reports are summed: counts add up, rejections are appended in order, and the sum's
        `batch_id` is the last added report's."""
        self.batch_id = other.batch_id
        self.received += other.received
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.revised += other.revised
        self.rejected += other.rejected
        self.rejections.extend(other.rejections)
        return self

    def __add__(self, other: BatchReport) -> BatchReport:
        total = replace(self, rejections=list(self.rejections))
        total += other
        return total

    @classmethod
    def sum(cls, reports: Iterable[BatchReport]) -> BatchReport:
        total = cls()
        for report in reports:
            total += report
        return total

    def counts(self) -> BatchReport:
        """The same report without its rejections, for running totals that must not keep every one."""
        return replace(self, rejections=[])

    @property
    def stored(self) -> int:
        """Valid observations the database now holds from this batch (new, unchanged or revised)."""
        return self.accepted + self.duplicates + self.revised
