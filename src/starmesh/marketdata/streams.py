"""Source streams into the hub: each update forwarded to the hub's ingest, several at once
over a pipelined bus; and under supervision: whatever a stream raises, it is restarted with
backoff, and its restarts and last error are counted and shown in the hub's health.
:class:`HubStreams` keeps which pairs the hub streams and the tasks that stream them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import msgspec

from starmesh.core.enums import DataType
from starmesh.core.errors import HubStandbyError
from starmesh.core.payloads import MarketData, Snapshot
from starmesh.marketdata.source import StreamingSource

__all__ = ["HubStreams", "StreamHealth", "forward", "supervise"]

logger = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 30.0


class StreamHealth(msgspec.Struct, kw_only=True):
    """One supervised stream, as ``/health`` shows it."""

    source: str
    pairs: int
    state: str = "starting"
    """starting, streaming, or restarting (after a failure, waiting its backoff)."""
    updates: int = 0
    restarts: int = 0
    last_error: str = ""


async def supervise(
    health: StreamHealth,
    run_once: Callable[[], Awaitable[None]],
    *,
    on_fault: Callable[[], None],
    sleep: Callable[[float], Awaitable[None]],
    running: Callable[[], bool],
) -> None:
    """Run ``run_once`` (one pass of a stream: it returns when the stream ends) for as long as
    ``running()``; after an end or any exception, wait (jittered, doubling while the stream
    delivers nothing) and start it again. Only cancellation stops it.
    """
    backoff = _FIRST_BACKOFF_S
    while running():
        updates_before = health.updates
        health.state = "streaming"
        try:
            await run_once()
        except Exception as exc:
            health.restarts += 1
            health.last_error = f"{type(exc).__name__}: {exc}"[:500]
            on_fault()
            if health.restarts & (health.restarts - 1) == 0:  # 1st, 2nd, 4th...: bounded logs
                logger.warning(
                    "stream of %d pairs from %r failed (restart #%d): %s",
                    health.pairs, health.source, health.restarts, health.last_error,
                )  # fmt: skip
        if health.updates > updates_before:
            backoff = _FIRST_BACKOFF_S  # it worked for a while: start the backoff again
        health.state = "restarting"
        await asyncio.sleep(0)  # a sleep that does not suspend (a test clock) must not spin
        await sleep(backoff * (0.5 + random.random()))
        backoff = min(backoff * 2, _MAX_BACKOFF_S)


Ingest = Callable[[str, str, DataType, MarketData], Coroutine[Any, Any, Snapshot]]


async def forward(
    updates: AsyncIterator[tuple[str, DataType, MarketData]],
    source: str,
    ingest: Ingest,
    *,
    health: StreamHealth,
    window: int,
) -> None:
    """One pass of a stream: ``ingest`` each update until the stream ends.

    Up to ``window`` updates distribute at once: one awaited after another, a stream ran at
    one Redis round trip per update (about 230 updates/s with 14 processes on 2 cores). Each
    task numbers and submits its update in its first step, and tasks start in creation order,
    so the order on the bus is kept. A hub on standby (it lost its lease) ends the pass
    quietly: no fault of the source's, nothing for its breaker to count.
    """
    in_flight: set[asyncio.Task[Snapshot]] = set()
    try:
        async for symbol, data_type, data in updates:
            health.updates += 1
            if window == 1:
                await ingest(source, symbol, data_type, data)
                continue
            in_flight.add(asyncio.create_task(ingest(source, symbol, data_type, data)))
            if len(in_flight) >= window:
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                in_flight.difference_update(done)
                for finished in done:
                    finished.result()  # a fault surfaces here: the stream restarts
    except HubStandbyError:
        return
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)


Pair = tuple[str, str, DataType]
"""(source, symbol, data type)."""


class HubStreams:
    """The pairs a hub streams, in the order engines asked for them, and one supervised task
    per batch of new pairs of a source, which forwards its updates to ``ingest``.

    ``window()`` says how many updates may distribute at once (see :func:`forward`);
    ``on_fault(source)`` counts a failed pass against the source's breaker. A hub that does
    not stream itself (a simulation feeds ``ingest``) still records its pairs: the simulation
    reads them to know what to feed.
    """

    def __init__(
        self,
        ingest: Ingest,
        *,
        window: Callable[[], int],
        on_fault: Callable[[str], None],
        sleep: Callable[[float], Awaitable[None]],
        running: Callable[[], bool],
        streaming: bool,
    ) -> None:
        self._ingest = ingest
        self._running = running
        self._window = window
        self._on_fault = on_fault
        self._sleep = sleep
        self._streaming = streaming
        self._pairs: dict[Pair, None] = {}
        self.health: list[StreamHealth] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def __contains__(self, pair: Pair) -> bool:
        return pair in self._pairs

    def __len__(self) -> int:
        return len(self._pairs)

    def pairs(self) -> list[Pair]:
        return list(self._pairs)

    def add(self, pair: Pair) -> None:
        self._pairs[pair] = None

    def start(self, source: StreamingSource, pairs: list[tuple[str, DataType]]) -> None:
        """Stream ``source``'s new (symbol, data type) pairs (already added) in a task."""
        if not self._streaming or not pairs:
            return  # someone else feeds them, through ingest (a simulation)
        symbols = sorted({s for s, _ in pairs})
        data_types = sorted({t for _, t in pairs}, key=lambda t: t.value)
        task = asyncio.create_task(self._run(source, symbols, data_types),
                                   name=f"stream:{source.name}")  # fmt: skip
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, *, forget: bool = False) -> None:
        """End every stream; with ``forget``, the pairs and their health too (a hub stepping
        down: the next active hub streams them). A stopped hub keeps them for its report."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if forget:
            self._pairs.clear()
            self.health.clear()

    async def _run(
        self, source: StreamingSource, symbols: list[str], data_types: list[DataType]
    ) -> None:
        health = StreamHealth(source=source.name, pairs=len(symbols) * len(data_types))
        self.health.append(health)

        async def run_once() -> None:
            await forward(source.stream(symbols, data_types), source.name, self._ingest,
                          health=health, window=self._window())  # fmt: skip

        await supervise(
            health,
            run_once,
            on_fault=lambda: self._on_fault(source.name),
            sleep=self._sleep,
            running=self._running,
        )
