"""Sinks: where the outbox goes (MQTT, CSV files, HTTP push). Each takes outbox frames in send order."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd


class SinkError(RuntimeError):
    """The sink cannot deliver (broker or service unreachable, credentials refused); says what to do."""


@dataclass
class SinkReport:
    """What a sink delivered."""

    sink: str
    observations: int = 0
    messages: int = 0
    files: list[str] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    revised: int = 0
    rejected: int = 0


class Sink(Protocol):
    def send(self, out: pd.DataFrame) -> None: ...

    def close(self) -> SinkReport: ...


class RateLimiter:
    """Token bucket: at most `rate` units per second (0 = unlimited), smooth over short bursts."""

    def __init__(self, rate: float, burst_s: float = 0.2) -> None:
        self.rate = rate
        self.capacity = max(rate * burst_s, 1.0)
        self.tokens = self.capacity
        self.last = time.monotonic()

    def take(self, n: int = 1) -> None:
        if self.rate <= 0:
            return
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= n or self.tokens >= self.capacity:
                self.tokens -= n
                return
            time.sleep(min((n - self.tokens) / self.rate, 0.05))
