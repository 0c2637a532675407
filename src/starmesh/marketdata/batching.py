"""Merging an engine's concurrent requests to the hub into one.

Many coroutines of one engine often ask for quotes at once. The ``get_data`` calls that miss
the L1 cache within one event-loop tick, and agree on data types, source, params and
timeout, become one request with all their symbols: one bus round trip instead of many.
Each caller gets exactly its own pairs, and only its own failures. No timer is involved:
the merged request leaves at the end of the tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from starmesh.core.enums import DataType
from starmesh.core.payloads import MarketDataQuery, MarketDataReply

__all__ = ["RequestBatcher"]

Pair = tuple[str, DataType]
Ask = Callable[[MarketDataQuery, float | None], Awaitable[MarketDataReply]]


class _Waiting(NamedTuple):
    query: MarketDataQuery
    pairs: list[Pair]
    future: asyncio.Future[MarketDataReply]


class RequestBatcher:
    def __init__(self, ask: Ask) -> None:
        self._ask = ask
        self._groups: dict[tuple[object, ...], list[_Waiting]] = {}
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()
        self.merged = 0
        """Calls that shared another call's request."""

    def submit(
        self, query: MarketDataQuery, pairs: list[Pair], timeout: float | None
    ) -> asyncio.Future[MarketDataReply]:
        loop = asyncio.get_running_loop()
        key = (query.source, tuple(sorted(query.params.items())), tuple(query.data_types), timeout)
        future: asyncio.Future[MarketDataReply] = loop.create_future()
        self._groups.setdefault(key, []).append(_Waiting(query, pairs, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    async def aclose(self) -> None:
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _flush(self) -> None:
        self._scheduled = False
        groups, self._groups = self._groups, {}
        for (*_, timeout), waiting in groups.items():
            task = asyncio.create_task(self._send(waiting, timeout))  # type: ignore[arg-type]
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, waiting: list[_Waiting], timeout: float | None) -> None:
        query = waiting[0].query
        if len(waiting) > 1:
            self.merged += len(waiting) - 1
            query = MarketDataQuery(
                symbols=list(dict.fromkeys(s for w in waiting for s in w.query.symbols)),
                data_types=query.data_types,
                source=query.source,
                params=query.params,
            )
        try:
            reply = await self._ask(query, timeout)
        except Exception as exc:
            # One failed attempt answers every call: each then falls back on its own cached
            # values, rather than every call asking the unreachable hub again.
            for w in waiting:
                _settle(w.future, exc)
            return
        if len(waiting) == 1:
            _settle(waiting[0].future, reply)
            return
        for w in waiting:
            wanted = set(w.pairs)
            _settle(
                w.future,
                MarketDataReply(
                    snapshots=[s for s in reply.snapshots if (s.symbol, s.data_type) in wanted],
                    failures=[f for f in reply.failures if (f.symbol, f.data_type) in wanted],
                ),
            )


def _settle(future: asyncio.Future[MarketDataReply], outcome: MarketDataReply | Exception) -> None:
    if future.done():  # the caller has gone (cancelled)
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
        future.exception()  # retrieved here: a caller that left must not log "never retrieved"
    else:
        future.set_result(outcome)
