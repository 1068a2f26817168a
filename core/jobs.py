"""What a periodic job is, so that each layer can declare its own and the scheduler at the top runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job: the instant it runs for, the start of its interval, and which process runs it."""

    at: datetime
    bucket: datetime
    runner: str


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job of one layer. `run(conn, job_run)` owns the transaction on `conn` (it commits)."""

    name: str
    every_s: float
    run: Callable[[Any, JobRun], None]
    #: run once per interval across every scheduler process (claimed in scheduler_run); False: whenever the
    #: job's lock is free (delivery: any process may push pending notifications)
    once_per_interval: bool = True
    #: seconds after start before the first run
    first_delay_s: float = 0.0
