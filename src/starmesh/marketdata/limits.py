"""A token bucket and a circuit breaker per source, both on an injectable clock.

Hand-written (about a hundred lines) rather than taken from aiolimiter or purgatory: both
read the time themselves (``loop.time()``, ``time.time()``), so their behaviour cannot be
tested with a manual clock, and the hub's accounting needs the wait a request was given.
"""

from __future__ import annotations

from typing import Literal

from starmesh.core.clock import Clock
from starmesh.marketdata.source import RateLimit

__all__ = ["BreakerState", "CircuitBreaker", "TokenBucket"]

BreakerState = Literal["closed", "open", "half_open"]


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second. ``reserve`` takes a token now and
    says how long to wait before using it; reservations queue, so a burst is spread out in
    arrival order (the n-th request past the capacity waits n / rate seconds). A reservation
    whose wait would exceed ``max_wait`` (what the caller has left) is refused and takes
    nothing, so a caller that cannot wait does not push everyone behind it further back.
    """

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        if limit.rate <= 0:
            raise ValueError("a rate limit must allow some requests")
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.capacity)
        self._updated = clock.monotonic()

    def reserve(self, max_wait: float = float("inf")) -> float | None:
        """Seconds to wait before using the token taken, or None (nothing taken) when that
        would be longer than ``max_wait``.
        """
        self._refill()
        wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.limit.rate
        if wait > max_wait:
            return None
        self._tokens -= 1
        return wait

    @property
    def available(self) -> float:
        """Tokens left now (negative: reservations are queued)."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(
            float(self.limit.capacity), self._tokens + (now - self._updated) * self.limit.rate
        )
        self._updated = now


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``reset_s`` lets one probe through
    (half-open): its success closes the breaker, its failure opens it again.
    """

    def __init__(self, threshold: int, reset_s: float, clock: Clock) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self.opened = 0
        """How many times it has opened."""

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through."""
        if self._state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.reset_s - self._clock.monotonic())

    def allow(self) -> bool:
        """Whether a call may go to the source now (a True in half-open is the probe)."""
        if self._state == "closed":
            return True
        if self._state == "open" and self.retry_in == 0:
            self._state = "half_open"
            return True
        return False

    def record_success(self) -> None:
        self._state = "closed"
        self._failures = 0

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.threshold:
            if self._state != "open":
                self.opened += 1
            self._state = "open"
            self._opened_at = self._clock.monotonic()
