"""The health of one delivery path (the bus, HTTP to the peers): its state, its switches, its
recent latencies and errors; and the jittered backoff its checks wait by.

A path is *up* when its last attempt worked, *down* when it failed, *degraded* when it works
for some destinations and not others (HTTP). Every change of state is a *switch*: logged once,
counted, and shown in ``/health`` and ``starmesh status``.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from typing import Any, Literal

__all__ = ["Backoff", "PathHealth", "PathState"]

logger = logging.getLogger("starmesh.failover")

PathState = Literal["up", "degraded", "down"]
_WINDOW_S = 60.0
_SAMPLES = 4_096


class PathHealth:
    def __init__(self, name: str) -> None:
        self.name = name
        self.state: PathState = "up"
        self.since = time.monotonic()
        self.switches = 0
        self.errors = 0
        self.last_error = ""
        self._latencies: deque[tuple[float, float]] = deque(maxlen=_SAMPLES)
        self._errors: deque[float] = deque(maxlen=_SAMPLES)

    def succeeded(self, seconds: float | None = None) -> None:
        now = time.monotonic()
        if seconds is not None:
            self._latencies.append((now, seconds))
        self._set("up", now)

    def failed(self, error: str, *, partly: bool = False) -> None:
        now = time.monotonic()
        self.errors += 1
        self.last_error = error[:300]
        self._errors.append(now)
        self._set("degraded" if partly else "down", now)

    def _set(self, state: PathState, now: float) -> None:
        if state == self.state:
            return
        was, lasted = self.state, now - self.since
        self.state, self.since = state, now
        self.switches += 1
        log = logger.info if state == "up" else logger.warning
        log(
            "path %s: %s -> %s after %.3f s%s", self.name, was, state, lasted,
            f" ({self.last_error})" if state != "up" else "",
        )  # fmt: skip

    def report(self) -> dict[str, Any]:
        """State, switches, and the last minute's latencies (ms) and error count."""
        now = time.monotonic()
        recent = sorted(s for t, s in self._latencies if now - t <= _WINDOW_S)
        latency: dict[str, float] = {}
        if recent:
            latency = {
                "p50_ms": round(recent[len(recent) // 2] * 1e3, 3),
                "p99_ms": round(recent[min(len(recent) - 1, int(len(recent) * 0.99))] * 1e3, 3),
                "max_ms": round(recent[-1] * 1e3, 3),
                "samples": len(recent),
            }
        return {
            "state": self.state,
            "for_s": round(now - self.since, 3),
            "switches": self.switches,
            "errors": self.errors,
            "errors_last_minute": sum(1 for t in self._errors if now - t <= _WINDOW_S),
            "last_error": self.last_error,
            "latency_last_minute": latency,
        }


class Backoff:
    """Doubling waits from ``first`` to ``cap``, each jittered to 50-150% (so that engines
    that lost the bus together do not all come back in the same instant)."""

    def __init__(self, first: float, cap: float) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def next(self) -> float:
        delay = self._next * (0.5 + random.random())
        self._next = min(self._next * 2, self._cap)
        return delay

    def reset(self) -> None:
        self._next = self._first
