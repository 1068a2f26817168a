"""Intake and flow control: received messages wait in a queue bounded by count and bytes (the network thread
blocks while it is full, so the broker's Receive Maximum holds the rest) and leave it in batches cut by
size and by time."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ingest.delivery import PendingMessage


class IntakeQueue:
    """FIFO of pending messages bounded by count and bytes; `put` blocks while full (always admits one)."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[tuple[PendingMessage, int]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def put(self, message: PendingMessage, nbytes: int, abandon: Callable[[], bool] = lambda: False) -> bool:
        with self._lock:
            while self._items and (len(self._items) >= self.max_messages or self._bytes + nbytes > self.max_bytes):
                if abandon():
                    return False
                self._not_full.wait(0.5)
            self._items.append((message, nbytes))
            self._bytes += nbytes
            self._not_empty.notify()
            return True

    def get(self, timeout: float) -> PendingMessage | None:
        with self._lock:
            if not self._items:
                self._not_empty.wait(timeout)
            if not self._items:
                return None
            message, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._not_full.notify()
            return message

    def take(self, max_observations: int) -> list[PendingMessage]:
        """Without waiting: queued messages until they weigh at least `max_observations` (or none are left)."""
        taken: list[PendingMessage] = []
        weight = 0
        with self._lock:
            while self._items and weight < max_observations:
                message, nbytes = self._items.popleft()
                self._bytes -= nbytes
                taken.append(message)
                weight += message.size
            if taken:
                self._not_full.notify_all()
        return taken

    def __len__(self) -> int:
        return len(self._items)


def next_batch(
    queue: IntakeQueue, max_observations: int, interval_s: float, clock: Callable[[], float] = time.monotonic
) -> list[PendingMessage]:
    """Messages for one batch: waits up to `interval_s` for the first, then collects until full or the interval ends."""
    first = queue.get(timeout=interval_s)
    if first is None:
        return []
    batch, weight = [first], first.size
    deadline = clock() + interval_s
    while weight < max_observations:
        taken = queue.take(max_observations - weight)  # what is already queued, in one go
        if taken:
            batch.extend(taken)
            weight += sum(m.size for m in taken)
            continue
        remaining = deadline - clock()
        message = queue.get(timeout=max(remaining, 0.0))
        if message is None:
            break
        batch.append(message)
        weight += message.size
    return batch
