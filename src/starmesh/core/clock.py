"""Time: wall-clock UNIX nanoseconds for envelopes; an injectable clock for expiring things."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "MonotonicClock", "now_ns"]

now_ns = time.time_ns
"""UNIX time in nanoseconds: the unit of every ``ts_*`` field."""


class Clock(Protocol):
    """Monotonic seconds; injected where behaviour depends on elapsed time, so tests control it."""

    def monotonic(self) -> float: ...


class MonotonicClock:
    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
