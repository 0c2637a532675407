"""Single-flight: concurrent calls for the same key share one execution and its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    """The execution runs in a task of its own that every caller awaits shielded: a caller
    that is cancelled (its request timed out) neither stops it nor fails the others.
    """

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[T]] = {}
        self.joined = 0
        """Calls that waited for a flight already under way instead of starting one."""

    def in_flight(self, key: K) -> bool:
        return key in self._flights

    async def run(self, key: K, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``await call()``, unless a call for ``key`` is under way: then its result (or error)."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(call())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        else:
            self.joined += 1
        return await asyncio.shield(flight)

    def _landed(self, key: K, flight: asyncio.Task[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here: every waiter may have gone
