"""The MarketData Hub: the one component that talks to the external sources.

For every (symbol, data type) an engine asks for, the hub answers from its cache when the
value is fresh; otherwise exactly one upstream call is made however many engines ask at once
(single-flight), through the source's circuit breaker and token bucket. Each new value gets
the next sequence number of its (symbol, data type), is stored, and is written once to the
MarketData Bus broadcast, so every engine sees the same snapshot. When a source fails, the
last value is served marked stale.

Engines reach the hub over the bus (request/reply on ``marketdata.request.get`` and
``marketdata.request.subscribe``) or over HTTP (``GET /v1/marketdata``, see ``http.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self

import msgspec

from starmesh.client.messagebus import MessageBusClient
from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType, MessageType
from starmesh.core.errors import (
    InvalidRequestError,
    MarketDataError,
    MessageBusError,
    UnknownSymbolError,
    UnsupportedDataTypeError,
)
from starmesh.core.message import Message
from starmesh.core.payloads import (
    MarketData,
    MarketDataFailure,
    MarketDataQuery,
    MarketDataReply,
    Snapshot,
)
from starmesh.core.routing import marketdata_topic
from starmesh.marketdata.accounting import HubAccounting
from starmesh.marketdata.cache import SnapshotCache
from starmesh.marketdata.queries import as_query, query_pairs
from starmesh.marketdata.singleflight import SingleFlight
from starmesh.marketdata.source import DataRequest, Source, StreamingSource
from starmesh.marketdata.upstream import SOURCE_FAULTS, Upstream

__all__ = ["GET_TOPIC", "SUBSCRIBE_TOPIC", "MarketDataHub"]

logger = logging.getLogger(__name__)

GET_TOPIC = "marketdata.request.get"
SUBSCRIBE_TOPIC = "marketdata.request.subscribe"
_CONCURRENT_ANSWERS = 1_024
_MAX_STREAMED_PAIRS = 10_000
_UNKNOWN_FOR_S = 3_600.0
_UNKNOWN_LIMIT = 100_000


class MarketDataHub:
    def __init__(
        self,
        sources: Sequence[Source],
        *,
        bus: MessageBusClient,
        settings: Settings,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        serve_http: bool = False,
        host: str = "127.0.0.1",
        port: int = 8800,
    ) -> None:
        if not sources:
            raise InvalidRequestError("a hub needs at least one source")
        self.sources: dict[str, Source] = {}
        for source in sources:
            if source.name in self.sources:
                raise InvalidRequestError(f"source {source.name!r} given twice")
            self.sources[source.name] = source
        # A source's credentials and files come with the settings at start: read its status
        # once here, not on every request (the replay source looks at its files on disk).
        self._configured = [s for s in sources if s.status().state == "configured"]
        self.bus = bus
        self.settings = settings
        self._clock = clock
        self._serve_http = serve_http
        self.host = host
        self.port = port
        ttl = settings.cache_ttl_s
        self.cache = SnapshotCache(
            lambda data_type: ttl.get(data_type, 60.0),
            max_entries=settings.cache_max_entries,
            refresh_ahead=settings.refresh_ahead,
            clock=clock,
        )
        self._flights: SingleFlight[DataRequest, Snapshot] = SingleFlight()
        self.accounting = HubAccounting()
        self._upstreams = {
            name: Upstream(
                source, settings=settings, clock=clock, accounting=self.accounting, sleep=sleep
            )
            for name, source in self.sources.items()
        }
        self._sequence: dict[tuple[str, DataType], int] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._streamed: set[tuple[str, str, DataType]] = set()
        self._unknown: OrderedDict[tuple[str, str, DataType], float] = OrderedDict()
        """(source, symbol, data type) -> until when the source is known not to have it."""
        self._http: Any = None  # uvicorn.Server, when serving HTTP
        self._http_task: asyncio.Task[None] | None = None
        self._running = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        # Many requests at once: an answer waiting on a slow source must not hold up the rest.
        await self.bus.serve(GET_TOPIC, self._answer_get, concurrency=_CONCURRENT_ANSWERS)
        await self.bus.serve(SUBSCRIBE_TOPIC, self._answer_subscribe, concurrency=16)
        await self.bus.start()
        self._running = True
        if self._serve_http:
            await self._start_http()
        logger.info("MarketData Hub up with sources %s", ", ".join(self.sources))

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._http is not None:
            self._http.should_exit = True
            if self._http_task is not None:
                await self._http_task
            self._http = None
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.bus.stop()
        for source in self.sources.values():
            with contextlib.suppress(Exception):
                await source.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def idle(self) -> None:
        """Wait for the background refreshes under way (tests use it instead of sleeping)."""
        while refreshing := [t for t in self._background if t.get_name().startswith("refresh:")]:
            await asyncio.gather(*refreshing, return_exceptions=True)

    # --- answering ---------------------------------------------------------------------------

    async def get(self, query: MarketDataQuery, engine: str = "direct") -> MarketDataReply:
        """Every (symbol, data type) pair of ``query``: snapshots, and failures with their kind."""
        pairs = query_pairs(query)
        # Cache hits are answered here, synchronously; only the rest pay for coroutines (and
        # a gather's tasks when there are several).
        outcomes: list[Snapshot | BaseException | None] = [
            self._hit(symbol, data_type, query, engine) for symbol, data_type in pairs
        ]
        missing = [i for i, outcome in enumerate(outcomes) if outcome is None]
        if len(missing) == 1:
            symbol, data_type = pairs[missing[0]]
            try:
                outcomes[missing[0]] = await self._one(symbol, data_type, query, engine)
            except Exception as exc:
                outcomes[missing[0]] = exc
        elif missing:
            fetched = await asyncio.gather(
                *(self._one(*pairs[i], query, engine) for i in missing), return_exceptions=True
            )
            for i, value in zip(missing, fetched, strict=True):
                outcomes[i] = value
        snapshots: list[Snapshot] = []
        failures: list[MarketDataFailure] = []
        for (symbol, data_type), outcome in zip(pairs, outcomes, strict=True):
            if isinstance(outcome, Snapshot):
                snapshots.append(outcome)
            elif isinstance(outcome, MarketDataError):
                failures.append(MarketDataFailure(symbol, data_type, outcome.code, str(outcome)))
            else:
                logger.error("resolving %s %s failed", symbol, data_type.value, exc_info=outcome)
                failures.append(
                    MarketDataFailure(symbol, data_type, "market_data_error", repr(outcome))
                )
        return MarketDataReply(snapshots=snapshots, failures=failures)

    async def ensure_streams(self, query: MarketDataQuery) -> int:
        """Start streaming the pairs of ``query`` from a source that pushes them; how many
        pairs were newly started. Pairs no streaming source serves are left to requests.
        """
        pairs = query_pairs(query)
        now = self._clock.monotonic()
        started = 0
        by_source: dict[str, list[tuple[str, DataType]]] = {}
        for symbol, data_type in pairs:
            streaming = self._candidates(data_type, query.source, streaming=True)
            source = next(
                (
                    s
                    for s in streaming
                    if self._unknown.get((s.name, symbol, data_type), 0.0) <= now
                ),
                None,
            )
            if source is None or (source.name, symbol, data_type) in self._streamed:
                continue
            if len(self._streamed) >= _MAX_STREAMED_PAIRS:
                raise InvalidRequestError(f"the hub streams at most {_MAX_STREAMED_PAIRS:,} pairs")
            self._streamed.add((source.name, symbol, data_type))
            by_source.setdefault(source.name, []).append((symbol, data_type))
            started += 1
        for name, new in by_source.items():
            source = self.sources[name]
            assert isinstance(source, StreamingSource)
            symbols = sorted({s for s, _ in new})
            data_types = sorted({t for _, t in new}, key=lambda t: t.value)
            self._spawn(f"stream:{name}", self._stream(source, symbols, data_types))
        return started

    # --- one value ---------------------------------------------------------------------------

    async def _one(
        self, symbol: str, data_type: DataType, query: MarketDataQuery, engine: str
    ) -> Snapshot:
        """Ask the sources that serve ``data_type`` in order of preference; a source that does
        not know the symbol is remembered as such for an hour and the next one is asked.
        """
        self.accounting.request(engine, data_type.value)
        candidates = self._candidates(data_type, query.source, streaming=False)
        if not candidates:
            raise UnsupportedDataTypeError(
                f"no source of this hub serves {data_type.value}"
                + (f" (asked of {query.source!r})" if query.source else "")
            )
        now = self._clock.monotonic()
        unknown: list[str] = []
        for source in candidates:
            key = (source.name, symbol, data_type)
            if self._unknown.get(key, 0.0) > now:
                unknown.append(f"{source.name}: unknown")
                continue
            try:
                return await self.resolve(
                    DataRequest.of(source.name, data_type, symbol, query.params)
                )
            except UnknownSymbolError as exc:
                self._unknown[key] = now + _UNKNOWN_FOR_S
                if len(self._unknown) > _UNKNOWN_LIMIT:
                    self._unknown.popitem(last=False)
                unknown.append(str(exc))
        raise UnknownSymbolError(f"no source knows {symbol!r} ({'; '.join(unknown)})")

    def _hit(
        self, symbol: str, data_type: DataType, query: MarketDataQuery, engine: str
    ) -> Snapshot | None:
        """The pair's fresh cached value from the source ``_one`` would ask first, counted as
        a request; None when ``_one`` has to run (a miss, or an error for it to report).
        """
        if query.source is not None and query.source not in self.sources:
            return None
        now = self._clock.monotonic()
        for source in self._candidates(data_type, query.source, streaming=False):
            if self._unknown.get((source.name, symbol, data_type), 0.0) > now:
                continue
            snapshot = self._cached(DataRequest.of(source.name, data_type, symbol, query.params))
            if snapshot is not None:
                self.accounting.request(engine, data_type.value)
            return snapshot
        return None

    async def resolve(self, request: DataRequest) -> Snapshot:
        """The value of ``request``: cached, shared with a call under way, fetched, or stale."""
        cached = self._cached(request)
        if cached is not None:
            return cached
        self.accounting.cache_misses += 1
        try:
            return await self._flights.run(request, lambda: self._fetch(request))
        except SOURCE_FAULTS:
            entry = self.cache.get(request)
            if entry is None:
                raise
            self.accounting.stale_served += 1
            return msgspec.structs.replace(entry.snapshot, stale=True, age_s=self.cache.age(entry))

    def _cached(self, request: DataRequest) -> Snapshot | None:
        """A fresh cached value of ``request``, counted as a hit; a hot one is refreshed ahead."""
        entry = self.cache.get(request)
        if entry is None or not self.cache.is_fresh(entry):
            return None
        entry.hits += 1
        self.accounting.cache_hits += 1
        if self.cache.due_for_refresh(entry) and not self._flights.in_flight(request):
            self.accounting.refreshes_ahead += 1
            self._spawn(f"refresh:{request.source}", self._refresh(request))
        return entry.snapshot

    async def _refresh(self, request: DataRequest) -> None:
        with contextlib.suppress(MarketDataError):  # counted in _fetch; the old value stays
            await self._flights.run(request, lambda: self._fetch(request))

    async def _fetch(self, request: DataRequest) -> Snapshot:
        data = await self._upstreams[request.source].fetch(request)
        snapshot = self._new_snapshot(request, data)
        self.cache.put(request, snapshot)
        if not request.params:  # the canonical value of the pair: everyone sees it
            await self._distribute(snapshot)
        return snapshot

    def _new_snapshot(self, request: DataRequest, data: MarketData) -> Snapshot:
        key = (request.symbol, request.data_type)
        seq = self._sequence.get(key, 0) + 1
        self._sequence[key] = seq
        return Snapshot(
            symbol=request.symbol,
            data_type=request.data_type,
            seq=seq,
            ts_event=self._clock.now_ns(),
            source=request.source,
            data=data,
        )

    async def _distribute(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` once to the MarketData Bus broadcast (and, on Redis, its key)."""
        started = time.perf_counter()
        try:
            await self.bus.publish(
                marketdata_topic(snapshot.data_type, snapshot.symbol),
                snapshot,
                message_type=MessageType(snapshot.data_type.value),
                ts_event=snapshot.ts_event,
            )
        except MessageBusError as exc:
            # The value is still cached and returned; subscribers get the next one.
            self.accounting.distribution_failures += 1
            logger.warning(
                "could not broadcast %s %s: %s", snapshot.symbol, snapshot.data_type.value, exc
            )
            return
        self.accounting.distribution(time.perf_counter() - started)

    async def _stream(
        self, source: StreamingSource, symbols: list[str], data_types: list[DataType]
    ) -> None:
        backoff = 0.5
        while self._running:
            try:
                async for symbol, data_type, data in source.stream(symbols, data_types):
                    request = DataRequest(source.name, data_type, symbol)
                    snapshot = self._new_snapshot(request, data)
                    self.cache.put(request, snapshot)
                    await self._distribute(snapshot)
                    backoff = 0.5
            except MarketDataError as exc:
                self._upstreams[source.name].failed()
                logger.warning("stream of %s from %r failed: %s", symbols, source.name, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    # --- over the bus ------------------------------------------------------------------------

    async def _answer_get(self, request: Message) -> MarketDataReply:
        return await self.get(as_query(request.payload), engine=request.source.value)

    async def _answer_subscribe(self, request: Message) -> MarketDataReply:
        query = as_query(request.payload)
        await self.ensure_streams(query)
        return await self.get(query, engine=request.source.value)

    # --- introspection -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        summary = self.accounting.summary(self._flights.joined)
        summary["cache_entries"] = len(self.cache)
        summary["streamed_pairs"] = len(self._streamed)
        summary["sources"] = {
            name: {
                **msgspec.to_builtins(source.status()),
                "limit": str(source.rate_limit),
                "upstream_calls": self.accounting.upstream_calls.get(name, 0),
                "errors": self.accounting.source_errors.get(name, 0),
                "rate_limit_waits": self.accounting.rate_limit_waits.get(name, 0),
                "breaker": self._upstreams[name].breaker.state,
                "breaker_opened": self._upstreams[name].breaker.opened,
            }
            for name, source in self.sources.items()
        }
        return summary

    def health(self) -> dict[str, Any]:
        transports = [msgspec.to_builtins(h) for h in self.bus.health()]
        sources = {
            name: {"state": source.status().state, "breaker": self._upstreams[name].breaker.state}
            for name, source in self.sources.items()
        }
        healthy = self._running and all(t["healthy"] for t in transports)
        degraded = any(s["breaker"] == "open" for s in sources.values())
        status = "down" if not healthy else ("degraded" if degraded else "ok")
        return {"status": status, "transports": transports, "sources": sources}

    # --- helpers -----------------------------------------------------------------------------

    def _candidates(
        self, data_type: DataType, wanted: str | None, *, streaming: bool
    ) -> list[Source]:
        """The sources to ask for ``data_type``, in order of preference."""
        if wanted is not None:
            source = self.sources.get(wanted)
            if source is None:
                raise InvalidRequestError(
                    f"this hub has no source {wanted!r}; it has {', '.join(self.sources)}"
                )
            pool: Sequence[Source] = [source]
        else:
            pool = self._configured
        return [
            s
            for s in pool
            if data_type in s.data_types and (not streaming or isinstance(s, StreamingSource))
        ]

    def _spawn(self, name: str, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start_http(self) -> None:
        from starmesh.marketdata.http import serve

        self._http, self._http_task = await serve(self, self.host, self.port)
