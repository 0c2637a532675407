"""Time: wall-clock UNIX nanoseconds for envelopes; an injectable clock for expiring things."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "MonotonicClock", "now_ns"]

now_ns = time.time_ns
"""UNIX time in nanoseconds: the unit of every ``ts_*`` field."""


class Clock(Protocol):
    """Injected where behaviour depends on time, so tests control it."""

    def monotonic(self) -> float:
        """Seconds, for durations."""
        ...

    def now_ns(self) -> int:
        """UNIX nanoseconds, for timestamps."""
        ...


class MonotonicClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that moves only when told to (both readings move together)."""

    def __init__(self, start: float = 0.0, start_ns: int = 1_795_000_000_000_000_000) -> None:
        self._now = start
        self._start = start
        self._start_ns = start_ns

    def monotonic(self) -> float:
        return self._now

    def now_ns(self) -> int:
        return self._start_ns + round((self._now - self._start) * 1e9)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """An ``asyncio.sleep`` stand-in that advances this clock instead of waiting."""
        self.advance(max(seconds, 0.0))
