"""The MarketData Hub: the one component that talks to the external sources.

For every (symbol, data type) an engine asks for, the hub answers from its cache when the
value is fresh; otherwise exactly one upstream call is made however many engines ask at once
(single-flight), through the source's circuit breaker and token bucket. Each new value gets
the next sequence number of its (symbol, data type), is stored, and is written once to the
MarketData Bus broadcast, so every engine sees the same snapshot. When a source fails, the
last value is served marked stale.

Engines reach the hub over the bus (request/reply on ``marketdata.request.get`` and
``marketdata.request.subscribe``) or over HTTP (``GET /v1/marketdata``, see ``http.py``).

Over Redis a hub holds a lease (``leadership.py``): a second hub process waits on standby,
answering nothing and writing nothing, and takes over, numbering on, when the first dies.
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

from starmesh.client.lease import hub_lease
from starmesh.client.messagebus import MessageBusClient
from starmesh.client.subscription import Subscription
from starmesh.core.clock import Clock, now_ns
from starmesh.core.config import Settings
from starmesh.core.enums import DataType, MessageType
from starmesh.core.errors import (
    FencedError,
    HubStandbyError,
    InvalidRequestError,
    MarketDataError,
    MarketDataTimeout,
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
from starmesh.marketdata.leadership import HubLeadership
from starmesh.marketdata.numbering import Numbering
from starmesh.marketdata.queries import as_query, query_pairs
from starmesh.marketdata.singleflight import SingleFlight
from starmesh.marketdata.source import DataRequest, Source, StreamingSource
from starmesh.marketdata.streams import HubStreams
from starmesh.marketdata.upstream import SOURCE_FAULTS, Upstream

__all__ = ["GET_TOPIC", "SUBSCRIBE_TOPIC", "MarketDataHub"]

logger = logging.getLogger(__name__)

GET_TOPIC = "marketdata.request.get"
SUBSCRIBE_TOPIC = "marketdata.request.subscribe"
_CONCURRENT_ANSWERS = 1_024
_STREAM_WINDOW = 64
"""Updates of one stream being distributed at once (a bound on what waits for Redis)."""
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
        streaming: bool = True,
        lease: bool = False,
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
        self.numbering = Numbering(clock.now_ns())
        self._lease_wanted = lease
        self.leadership: HubLeadership | None = None
        """Under a lease: whether this hub is the active one or on standby."""
        self._leading: asyncio.Task[None] | None = None
        self._served: list[Subscription] = []
        self.fenced_writes = 0
        self._background: set[asyncio.Task[Any]] = set()
        self.streams = HubStreams(
            self.ingest,
            window=lambda: _STREAM_WINDOW if self.bus.marketdata_pipelined else 1,
            on_fault=lambda name: self._upstreams[name].failed(),
            sleep=sleep,
            running=lambda: self._running,
            streaming=streaming,
        )
        self._unknown: OrderedDict[tuple[str, str, DataType], float] = OrderedDict()
        """(source, symbol, data type) -> until when the source is known not to have it."""
        self._http: Any = None  # uvicorn.Server, when serving HTTP
        self._http_task: asyncio.Task[None] | None = None
        self._running = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving; under a lease held by another hub, start on standby instead."""
        if self._running:
            return
        app = self._build_app() if self._serve_http else None  # before start: it advertises
        if not self._lease_wanted:
            await self._serve_requests()  # before start: ready for a backlog waiting
        await self.bus.start()
        lease = hub_lease(self.bus, self.settings.hub_lease_ttl_s) if self._lease_wanted else None
        if self._lease_wanted and lease is None:
            await self._serve_requests()  # the embedded bus: one process, one hub
        self._running = True
        if app is not None:
            await self._start_http(app)
        if lease is not None:
            self.leadership = HubLeadership(
                lease, resume=self._resume, serve=self._serve_as_active,
                deactivate=self._deactivate,
                http_url=self._http_url, ttl_s=self.settings.hub_lease_ttl_s,
            )  # fmt: skip
            await self.leadership.campaign()
            await lease.announce(self.leadership.state, self._http_url())
            self._leading = asyncio.create_task(self.leadership.run(), name="hub-leadership")
        role = "" if self.leadership is None else f" ({self.leadership.state})"
        logger.info("MarketData Hub up%s with sources %s", role, ", ".join(self.sources))

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._leading is not None:
            self._leading.cancel()
            await asyncio.gather(self._leading, return_exceptions=True)
        await self.streams.stop()
        await self._cancel_background()
        if self.leadership is not None:  # nothing writes any more: hand the lease over
            await self.leadership.stop()
        if self._http is not None:
            self._http.should_exit = True
            if self._http_task is not None:
                await self._http_task
            self._http = None
        await self._cancel_background()  # what the last HTTP requests started
        await self.bus.stop()
        for source in self.sources.values():
            with contextlib.suppress(Exception):
                await source.aclose()

    async def _cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

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

    async def get(
        self, query: MarketDataQuery, engine: str = "direct", *, timeout: float | None = None
    ) -> MarketDataReply:
        """Every (symbol, data type) pair of ``query``: snapshots, and failures with their kind.

        ``timeout``: seconds until the caller stops waiting (default and cap:
        ``STARMESH_SOURCE_TIMEOUT_S``). Pairs not resolved by then fail as timed out, and the
        upstream calls no other caller waits for are cancelled.
        """
        self._require_active()
        pairs = self._pairs(query)
        limit = self.settings.source_timeout_s
        timeout = limit if timeout is None else max(0.0, min(timeout, limit))
        deadline = self._clock.monotonic() + timeout
        # Cache hits are answered here, synchronously; only the rest pay for coroutines (and
        # tasks when there are several).
        outcomes: list[Snapshot | BaseException | None] = [
            self._hit(symbol, data_type, query, engine) for symbol, data_type in pairs
        ]
        missing = [i for i, outcome in enumerate(outcomes) if outcome is None]
        if len(missing) == 1:
            symbol, data_type = pairs[missing[0]]
            try:
                async with asyncio.timeout(timeout):
                    outcomes[missing[0]] = await self._one(
                        symbol, data_type, query, engine, deadline
                    )
            except TimeoutError:
                outcomes[missing[0]] = _timed_out(timeout)
            except Exception as exc:
                outcomes[missing[0]] = exc
        elif missing:
            tasks = [
                asyncio.ensure_future(self._one(*pairs[i], query, engine, deadline))
                for i in missing
            ]
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()  # its flight is cancelled too if nobody else waits for it
            for i, task in zip(missing, tasks, strict=True):
                outcomes[i] = (
                    _timed_out(timeout) if task in late else task.exception() or task.result()
                )
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
        self._require_active()
        pairs = self._pairs(query)
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
            if source is None or (source.name, symbol, data_type) in self.streams:
                continue
            if len(self.streams) >= _MAX_STREAMED_PAIRS:
                raise InvalidRequestError(f"the hub streams at most {_MAX_STREAMED_PAIRS:,} pairs")
            self.streams.add((source.name, symbol, data_type))
            by_source.setdefault(source.name, []).append((symbol, data_type))
            started += 1
        if self.leadership is not None and by_source:
            # Recorded under the lease, so that a hub taking over streams them too.
            await self.leadership.lease.add_streams(
                [(name, symbol, data_type) for name, new in by_source.items()
                 for symbol, data_type in new]
            )  # fmt: skip
        self._start_streams(by_source)
        return started

    def _start_streams(self, by_source: dict[str, list[tuple[str, DataType]]]) -> None:
        for name, new in by_source.items():
            source = self.sources[name]
            assert isinstance(source, StreamingSource)  # only streaming sources are added
            self.streams.start(source, new)

    # --- one value ---------------------------------------------------------------------------

    async def _one(
        self,
        symbol: str,
        data_type: DataType,
        query: MarketDataQuery,
        engine: str,
        deadline: float,
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
                    DataRequest.of(source.name, data_type, symbol, query.params), deadline
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

    async def resolve(self, request: DataRequest, deadline: float | None = None) -> Snapshot:
        """The value of ``request``: cached, shared with a call under way, fetched, or stale.

        A fetch started here has until ``deadline`` (hub clock; default: the source timeout
        from now); a call joining one under way shares its deadline.
        """
        cached = self._cached(request)
        if cached is not None:
            return cached
        self.accounting.cache_misses += 1
        if deadline is None:
            deadline = self._clock.monotonic() + self.settings.source_timeout_s
        try:
            return await self._flights.run(request, lambda: self._fetch(request, deadline))
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
        deadline = self._clock.monotonic() + self.settings.source_timeout_s
        with contextlib.suppress(MarketDataError):  # counted in _fetch; the old value stays
            await self._flights.run(request, lambda: self._fetch(request, deadline))

    async def _fetch(self, request: DataRequest, deadline: float) -> Snapshot:
        data = await self._upstreams[request.source].fetch(request, deadline)
        snapshot = self._new_snapshot(request, data)
        self.cache.put(request, snapshot)
        if not request.params:  # the canonical value of the pair: everyone sees it
            await self._distribute(snapshot)
        return snapshot

    def _new_snapshot(self, request: DataRequest, data: MarketData) -> Snapshot:
        return Snapshot(
            symbol=request.symbol,
            data_type=request.data_type,
            seq=self.numbering.next(request),
            ts_event=self._clock.now_ns(),
            source=request.source,
            data=data,
            epoch=self.numbering.epoch,
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
            if isinstance(exc, FencedError) and self.leadership is not None:
                self.fenced_writes += 1  # another hub has the lease: nothing was written
                self.leadership.doubt()
            logger.warning(
                "could not broadcast %s %s: %s", snapshot.symbol, snapshot.data_type.value, exc
            )
            return
        self.accounting.distribution(time.perf_counter() - started, snapshot.data_type.value)

    async def ingest(
        self, source: str, symbol: str, data_type: DataType, data: MarketData
    ) -> Snapshot:
        """A new value pushed by ``source`` (its stream, or a simulation driving the hub):
        numbered, cached and distributed like any other.
        """
        self._require_active()
        request = DataRequest(source, data_type, symbol)
        snapshot = self._new_snapshot(request, data)
        self.cache.put(request, snapshot)
        await self._distribute(snapshot)
        return snapshot

    def streamed_pairs(self) -> list[tuple[str, str, DataType]]:
        """(source, symbol, data type) the engines asked to follow, in the order they asked."""
        return self.streams.pairs()

    @property
    def streamed_count(self) -> int:
        """How many pairs are streamed: it only grows, so a change says new pairs came."""
        return len(self.streams)

    # --- active or standby -------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """Of this hub's numbers (see ``numbering.py``): its start time, or its lease's token."""
        return self.numbering.epoch

    @property
    def standby(self) -> bool:
        """Under a lease another hub holds: this hub answers and writes nothing."""
        return self.leadership is not None and not self.leadership.active

    def _require_active(self) -> None:
        if self.standby:
            raise HubStandbyError(
                "this MarketData Hub is on standby: another hub holds the lease and serves"
            )

    async def _serve_requests(self) -> None:
        # Many requests at once: an answer waiting on a slow source must not hold up the rest.
        # One by one into _served: if the second fails, stepping down still ends the first.
        self._served.append(
            await self.bus.serve(GET_TOPIC, self._answer_get, concurrency=_CONCURRENT_ANSWERS)
        )
        self._served.append(
            await self.bus.serve(SUBSCRIBE_TOPIC, self._answer_subscribe, concurrency=16)
        )

    async def _resume(self, token: int) -> None:
        """The lease is ours with ``token``: number on from the snapshot keys in a new epoch.
        Nothing is served yet, so nothing is numbered before this is done."""
        assert self.leadership is not None  # it calls this
        lease = self.leadership.lease
        sequences = await lease.last_sequences()
        self.numbering.resume(token, sequences)
        self.cache.clear()  # values numbered before: never served as this epoch's
        logger.info("resumed: epoch %d, %d pairs numbered on", token, len(sequences))

    async def _serve_as_active(self) -> None:
        """Active: stream what the previous hub streamed, and answer."""
        assert self.leadership is not None  # it calls this
        taken_over = await self.leadership.lease.streams()
        by_source: dict[str, list[tuple[str, DataType]]] = {}
        for name, symbol, data_type in taken_over:
            source = self.sources.get(name)
            if (
                isinstance(source, StreamingSource)
                and (name, symbol, data_type) not in self.streams
            ):
                self.streams.add((name, symbol, data_type))
                by_source.setdefault(name, []).append((symbol, data_type))
        logger.info("active: streaming %d pairs taken over", len(taken_over))
        self._start_streams(by_source)
        await self._serve_requests()

    async def _deactivate(self) -> None:
        """Standby again: stop answering and streaming."""
        for subscription in self._served:
            await self.bus.unsubscribe(subscription)
        self._served = []
        await self.streams.stop(forget=True)

    def _http_url(self) -> str | None:
        if self.http_port is None:
            return None
        return self.settings.http_advertise_url or f"http://{self.host}:{self.http_port}"

    # --- over the bus ------------------------------------------------------------------------

    async def _answer_get(self, request: Message) -> MarketDataReply:
        timeout = _time_left(request)
        return await self.get(as_query(request.payload), request.source.value, timeout=timeout)

    async def _answer_subscribe(self, request: Message) -> MarketDataReply:
        query = as_query(request.payload)
        await self.ensure_streams(query)
        return await self.get(query, engine=request.source.value, timeout=_time_left(request))

    # --- introspection -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        summary = self.accounting.summary(self._flights.joined)
        summary["abandoned_calls"] = self._flights.abandoned
        summary["cache_entries"] = len(self.cache)
        summary["streamed_pairs"] = len(self.streams)
        summary["epoch"] = self.epoch
        summary["fenced_writes"] = self.fenced_writes
        if self.leadership is not None:
            summary["lease"] = self.leadership.status()
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

    async def health_report(self) -> dict[str, Any]:
        """``health()`` with the hub's bus client's own report: failover paths, route, outbox
        and dead letters. A hub whose bus is down still answers over HTTP: degraded."""
        report = self.health()
        bus = await self.bus.health_report()
        report["failover"] = bus["failover"]
        report["dead_letters"] = bus["dead_letters"]
        if report["status"] == "down" and self._running:
            report["status"] = "degraded"
        return report

    def health(self) -> dict[str, Any]:
        transports = [msgspec.to_builtins(h) for h in self.bus.health()]
        sources: dict[str, dict[str, str]] = {}
        for name, source in self.sources.items():
            known = source.status()
            sources[name] = {"state": known.state, "breaker": self._upstreams[name].breaker.state}
            if known.state == "unconfigured":
                sources[name]["detail"] = known.detail  # which variable to set
        streams = [msgspec.to_builtins(health) for health in self.streams.health]
        healthy = self._running and all(t["healthy"] for t in transports)
        degraded = any(s["breaker"] == "open" for s in sources.values()) or any(
            s["state"] == "restarting" for s in streams
        )
        status = "down" if not healthy else ("degraded" if degraded else "ok")
        if healthy and self.standby:
            status = "standby"
        report: dict[str, Any] = {
            "status": status, "transports": transports, "sources": sources, "streams": streams,
        }  # fmt: skip
        if self.leadership is not None:
            report["lease"] = self.leadership.status()
        return report

    @property
    def http_port(self) -> int | None:
        """The port the HTTP face listens on (the one bound, when port 0 was asked for)."""
        if self._http is None:
            return None
        for listener in self._http.servers:
            for sock in listener.sockets:
                return int(sock.getsockname()[1])
        return self.port

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

    def _pairs(self, query: MarketDataQuery) -> list[tuple[str, DataType]]:
        """The pairs of ``query``, checked; a malformed query is counted, then refused."""
        try:
            return query_pairs(query, self.settings.max_pairs_per_request)
        except InvalidRequestError:
            self.accounting.invalid_requests += 1
            raise

    def _spawn(self, name: str, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _build_app(self) -> Any:
        from starmesh.marketdata.http import build_app

        return build_app(self)

    async def _start_http(self, app: Any) -> None:
        from starmesh.marketdata.http import serve

        self._http, self._http_task = await serve(app, self.host, self.port)
        if self.http_port is not None:  # port 0: advertise the one bound, from the next beat
            self.bus.listening_on(self.http_port)


def _time_left(request: Message) -> float | None:
    """Seconds until the requester stops waiting (its ``deadline_ns``), if it said."""
    if request.deadline_ns is None:
        return None
    return max(0.0, (request.deadline_ns - now_ns()) / 1e9)


def _timed_out(timeout: float) -> MarketDataTimeout:
    return MarketDataTimeout(f"not resolved within the {timeout:.2f} s the caller waits")
