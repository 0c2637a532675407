"""Single-flight: concurrent calls for the same key share one execution and its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("task", "waiting")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiting = 0


class SingleFlight(Generic[K, T]):
    """The execution runs in a task of its own that every caller awaits shielded: a caller
    that is cancelled (its request timed out) neither stops it nor fails the others. When the
    last caller has gone, the execution is cancelled: nobody would use its result, and an
    upstream call costs quota.
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[T]] = {}
        self.joined = 0
        """Calls that waited for a flight already under way instead of starting one."""
        self.abandoned = 0
        """Executions cancelled because every caller had gone."""

    def in_flight(self, key: K) -> bool:
        return key in self._flights

    async def run(self, key: K, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``await call()``, unless a call for ``key`` is under way: then its result (or error)."""
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.create_task(call()))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda done: self._landed(key, done))
        else:
            self.joined += 1
        flight.waiting += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiting == 1 and not flight.task.done():
                flight.task.cancel()
                self.abandoned += 1
            raise
        finally:
            flight.waiting -= 1

    def _landed(self, key: K, task: asyncio.Task[T]) -> None:
        flight = self._flights.get(key)
        if flight is not None and flight.task is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have gone
