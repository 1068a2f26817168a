"""Preparing ahead: a generator's next items produced in a thread while the caller works on the current one
(a collector validates batch N+1 while batch N is stored)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def read_ahead(items: Iterator[T], depth: int = 1, name: str = "read-ahead") -> Generator[T, None, None]:
    """Yield from `items`, producing up to `depth` ahead in a thread; errors re-raise in the consumer.
    Closing the returned generator (or leaving a for loop over it) stops the producer at its next item."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            slots.put(("error", exc))

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)
