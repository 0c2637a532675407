"""Time: wall-clock UNIX nanoseconds for envelopes; injectable clocks for everything that decides.

Engines never read the time themselves: they are given an :class:`EngineClock`, which tells
the time and runs their periodic work. :class:`LiveClock` is the machine's time and asyncio's
timers; :class:`SimulatedClock` moves only when a backtest moves it, firing every timer due
on the way in time order, so the same engine code runs live and over history.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = [
    "Clock",
    "EngineClock",
    "LiveClock",
    "ManualClock",
    "MonotonicClock",
    "SimulatedClock",
    "Timer",
    "TimerCallback",
    "now_ns",
]

logger = logging.getLogger(__name__)

now_ns = time.time_ns
"""UNIX time in nanoseconds: the unit of every ``ts_*`` field."""

TimerCallback = Callable[[], Awaitable[None] | None]
"""Periodic work: a plain function or a coroutine function."""


class Clock(Protocol):
    """Injected where behaviour depends on time, so tests control it."""

    def monotonic(self) -> float:
        """Seconds, for durations."""
        ...

    def now_ns(self) -> int:
        """UNIX nanoseconds, for timestamps."""
        ...


class Timer(Protocol):
    @property
    def name(self) -> str: ...

    def cancel(self) -> None: ...


class EngineClock(Clock, Protocol):
    """A clock that also runs an engine's periodic work in its own time."""

    def every(self, interval_s: float, callback: TimerCallback, *, name: str) -> Timer:
        """Call ``callback`` every ``interval_s`` seconds of this clock, first one interval
        from now. A callback that raises is logged and counted; the timer goes on.
        """
        ...

    @property
    def timer_failures(self) -> int: ...


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


def _check_interval(interval_s: float) -> None:
    if not interval_s > 0:
        raise ValueError(f"a timer's interval must be positive, got {interval_s!r}")


class _TimerFailures:
    def __init__(self) -> None:
        self.timer_failures = 0

    async def _fire(self, name: str, callback: TimerCallback) -> None:
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.timer_failures += 1
            if self.timer_failures & (self.timer_failures - 1) == 0:  # 1st, 2nd, 4th...: bounded
                logger.exception("timer %s failed (failure #%d)", name, self.timer_failures)


class _LiveTimer:
    __slots__ = ("_task", "name")

    def __init__(self, name: str, task: asyncio.Task[None]) -> None:
        self.name = name
        self._task = task

    def cancel(self) -> None:
        self._task.cancel()


class LiveClock(_TimerFailures):
    """The machine's clock; timers run on the running event loop at a fixed rate."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now_ns(self) -> int:
        return time.time_ns()

    def every(self, interval_s: float, callback: TimerCallback, *, name: str) -> _LiveTimer:
        _check_interval(interval_s)
        task = asyncio.get_running_loop().create_task(
            self._run(interval_s, callback, name), name=f"timer:{name}"
        )
        return _LiveTimer(name, task)

    async def _run(self, interval_s: float, callback: TimerCallback, name: str) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + interval_s
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self._fire(name, callback)
            # Fixed rate; a callback slower than the interval skips the beats it missed.
            due += interval_s * max(1, int((loop.time() - due) // interval_s) + 1)


class _SimulatedTimer:
    __slots__ = ("callback", "cancelled", "interval_ns", "name")

    def __init__(self, name: str, interval_ns: int, callback: TimerCallback) -> None:
        self.name = name
        self.interval_ns = interval_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimulatedClock(_TimerFailures):
    """Time that moves only with :meth:`advance_to`, firing the timers due on the way.

    Timers fire in order of their due time (ties in the order they were set), each with the
    clock reading exactly its due time, so a run is the same every time.
    """

    def __init__(self, start_ns: int) -> None:
        super().__init__()
        self._start_ns = start_ns
        self._now_ns = start_ns
        self._due: list[tuple[int, int, _SimulatedTimer]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return (self._now_ns - self._start_ns) / 1e9

    def now_ns(self) -> int:
        return self._now_ns

    def every(self, interval_s: float, callback: TimerCallback, *, name: str) -> _SimulatedTimer:
        _check_interval(interval_s)
        timer = _SimulatedTimer(name, max(1, round(interval_s * 1e9)), callback)
        heapq.heappush(self._due, (self._now_ns + timer.interval_ns, next(self._order), timer))
        return timer

    def next_due_ns(self) -> int | None:
        """When the next timer fires, or None with no timer set."""
        while self._due and self._due[0][2].cancelled:
            heapq.heappop(self._due)
        return self._due[0][0] if self._due else None

    async def advance_to(
        self, ts_ns: int, settle: Callable[[], Awaitable[None]] | None = None
    ) -> int:
        """Move to ``ts_ns``, firing every timer due up to it (``settle`` awaited after each,
        e.g. to let the messages a timer published be handled). Returns how many fired.
        """
        if ts_ns < self._now_ns:
            raise ValueError(f"a clock does not go backwards ({ts_ns} < {self._now_ns})")
        fired = 0
        while (due := self.next_due_ns()) is not None and due <= ts_ns:
            _, _, timer = heapq.heappop(self._due)
            self._now_ns = due
            heapq.heappush(self._due, (due + timer.interval_ns, next(self._order), timer))
            await self._fire(timer.name, timer.callback)
            fired += 1
            if settle is not None:
                await settle()
        self._now_ns = ts_ns
        return fired
