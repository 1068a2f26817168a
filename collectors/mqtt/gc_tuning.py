"""Garbage-collector tuning for a process that holds tens of thousands of queued messages."""

from __future__ import annotations

import gc


def tune_garbage_collector() -> None:
    """Every received message allocates a few container objects and tens of thousands can be queued: with
    the default thresholds the cyclic collector runs every 700 allocations and its older generations keep
    walking the queue and every module's objects. Freeze what exists at start-up and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
