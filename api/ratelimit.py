"""Failed-authentication limiting (OWASP API4): too many bad keys from one client address, or against one
key prefix, within a window → 429 with Retry-After until the window has passed.

In memory, per process: enough to make guessing keys (2^192 secrets behind a public prefix) pointless and
to keep a flood of bad keys off the database; several API processes each keep their own counts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from fastapi import Request

from api.errors import ApiError
from api.keys import split_key
from core.settings import get_settings


class FailureLimiter:
    """Sliding-window counts of failures per subject (e.g. `addr:10.0.0.7`, `prefix:ab12cd34`)."""

    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 60.0,
        max_tracked: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, subjects: Iterable[str]) -> int | None:
        """Seconds until every subject may try again, or None when none is over its limit."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for subject in subjects:
                times = self._failures.get(subject)
                if times is None:
                    continue
                while times and times[0] <= now - self.window_s:
                    times.popleft()
                if len(times) >= self.max_failures:
                    wait = max(wait, times[0] + self.window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, subjects: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            for subject in subjects:
                times = self._failures.pop(subject, None) or deque(maxlen=self.max_failures)
                times.append(now)
                self._failures[subject] = times  # most recent last
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)


def subjects(request: Request, key: str) -> list[str]:
    """What a failure counts against: the client address, and the key prefix when the key has one."""
    out = [f"addr:{request.client.host if request.client else 'unknown'}"]
    prefix = split_key(key)
    if prefix is not None:
        out.append(f"prefix:{prefix}")
    return out


def limiter(request: Request) -> FailureLimiter:
    """The app's limiter, made on first use from the settings (INFRAWATCH_AUTH_MAX_FAILURES, _WINDOW_S,
    _MAX_TRACKED)."""
    state = request.app.state
    found: FailureLimiter | None = getattr(state, "auth_limiter", None)
    if found is None:
        s = get_settings()
        found = FailureLimiter(s.auth_max_failures, s.auth_window_s, s.auth_max_tracked)
        state.auth_limiter = found
    return found


def refuse_if_limited(request: Request, key: str) -> list[str]:
    """Raise 429 (with Retry-After) when the caller's address or the key's prefix has failed too often;
    returns the subjects to charge if this attempt fails too."""
    who = subjects(request, key)
    wait = limiter(request).retry_after(who)
    if wait is not None:
        raise ApiError(
            429,
            f"too many failed authentications from this address or for this key; try again in {wait} s "
            "with a valid key (an administrator creates keys with `infrawatch keys create`)",
            {"Retry-After": str(wait)},
        )
    return who


def record_failure(request: Request, who: list[str]) -> None:
    limiter(request).failed(who)


__all__ = ["FailureLimiter", "record_failure", "refuse_if_limited", "subjects"]
