"""What an engine uses for market data: ``get_data`` and ``subscribe``, through the hub.

A pair the engine *follows* (``subscribe``) is kept current in an in-process L1 cache by the
MarketData Bus broadcast, so ``get_data`` answers it without leaving the process, with the
sequence number every other engine sees, for as long as the value is younger than its data
type's TTL (``STARMESH_CACHE_TTL_S``); an older one (a source that does not stream, a stalled
stream) is asked of the hub again. Anything else is asked of the hub. If the hub does
not answer over the bus, the client asks it over HTTP; if that fails too, it serves the last
value it has seen, marked stale; then, only when ``STARMESH_DEV_SIMULATED_FALLBACK`` says so
(development), a simulated value (``source="simulated-fallback"``, stale); only then does it
raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Self

import httpx
import msgspec

from starmesh.client.messagebus import MessageBusClient
from starmesh.client.subscription import Subscription
from starmesh.core.clock import Clock, MonotonicClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MarketDataError,
    MarketDataTimeout,
    MessageBusError,
    RemoteError,
    RequestTimeout,
    SourceUnavailableError,
    market_data_error,
)
from starmesh.core.message import Message
from starmesh.core.payloads import MarketDataQuery, MarketDataReply, Snapshot
from starmesh.core.routing import marketdata_topic
from starmesh.marketdata.batching import RequestBatcher
from starmesh.marketdata.hub import GET_TOPIC, SUBSCRIBE_TOPIC
from starmesh.marketdata.queries import query_pairs
from starmesh.marketdata.source import DataRequest, Source

__all__ = ["MarketData", "MarketDataClient", "MarketDataSubscription", "SnapshotHandler"]

logger = logging.getLogger(__name__)

MarketData = dict[str, dict[DataType, Snapshot]]
"""symbol -> data type -> snapshot."""
SnapshotHandler = Callable[[Snapshot], Awaitable[None] | None]
Pair = tuple[str, DataType]
_L1_LIMIT = 100_000
_reply_decoder = msgspec.json.Decoder(MarketDataReply)
SIMULATED_FALLBACK = "simulated-fallback"
"""The ``source`` of a made-up value served in development when nothing else answers."""
_UNREACHABLE = (MarketDataTimeout, SourceUnavailableError)
"""How a path to the hub fails: the next path, then the cached value, is tried."""


class MarketDataSubscription:
    def __init__(self, pairs: list[Pair], handler: SnapshotHandler) -> None:
        self.pairs = pairs
        self.handler = handler
        self.bus_subscriptions: list[Subscription] = []


class MarketDataClient:
    """Create with :func:`starmesh.create_marketdata_client`; use as ``async with md:``."""

    def __init__(
        self,
        bus: MessageBusClient,
        *,
        owns_bus: bool,
        settings: Settings,
        hub_http_url: str,
        clock: Clock | None = None,
    ) -> None:
        self.bus = bus
        self._owns_bus = owns_bus
        self._settings = settings
        self._clock = clock or MonotonicClock()
        ttl = settings.cache_ttl_s
        self._ttl = {data_type: ttl.get(data_type, 60.0) for data_type in DataType}
        self._ttl_ns = {data_type: round(seconds * 1e9) for data_type, seconds in self._ttl.items()}
        self.hub_http_url = hub_http_url.rstrip("/")
        self._http: httpx.AsyncClient | None = None
        self._l1: OrderedDict[Pair, tuple[Snapshot, float]] = OrderedDict()
        self._followed: dict[Pair, int] = {}
        self.counts = {
            "l1_hits": 0,
            "snapshot_hits": 0,
            "snapshot_read_failures": 0,
            "bus_requests": 0,
            "http_fallbacks": 0,
            "hub_unreachable": 0,
            "stale_served": 0,
            "l1_expired": 0,
            "simulated_served": 0,
        }
        self._simulator: Source | None = None
        self._batcher = RequestBatcher(self._ask)

    async def start(self) -> None:
        if self._owns_bus:
            await self.bus.start()
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.hub_http_url,
                timeout=self._settings.request_timeout,
                headers=self.bus.http_auth.outgoing_headers(),
            )

    async def stop(self) -> None:
        await self._batcher.aclose()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._owns_bus:
            await self.bus.stop()

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

    # --- get ---------------------------------------------------------------------------------

    async def get_data(
        self,
        symbols: Iterable[str] | str,
        data_types: Iterable[DataType | str] | DataType | str = DataType.QUOTE,
        *,
        source: str | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> MarketData:
        """The current value of every (symbol, data type) pair.

        Raises a :class:`MarketDataError` subclass naming the failed pairs (the values that
        could be had are on the error's ``partial``), :class:`MarketDataTimeout` when neither
        the bus nor HTTP answered in time and nothing was cached.
        """
        query = _query(symbols, data_types, source, params)
        canonical = source is None and not params
        result: MarketData = {}
        missing: list[Pair] = []
        now = self._clock.monotonic()
        for pair in query_pairs(query, self._settings.max_pairs_per_request):
            cached = self._l1.get(pair) if canonical and pair in self._followed else None
            if cached is not None and now - cached[1] <= self._ttl[pair[1]]:
                self.counts["l1_hits"] += 1
                result.setdefault(pair[0], {})[pair[1]] = cached[0]
            else:
                if cached is not None:
                    self.counts["l1_expired"] += 1  # followed, but no update within its TTL
                missing.append(pair)
        if missing:
            asked = query
            if result:  # some pairs came from L1: ask only for the rest
                asked = _query_of(missing, source, params)
            try:
                reply = await self._batcher.submit(asked, missing, timeout)
            except _UNREACHABLE as failure:
                reply = await self._stale(missing, failure)
            self._collect(reply, result, remember=canonical)
        return result

    async def get_data_http(
        self,
        symbols: Iterable[str] | str,
        data_types: Iterable[DataType | str] | DataType | str = DataType.QUOTE,
        *,
        source: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> MarketData:
        """``get_data`` straight over the hub's HTTP endpoint (the failover path)."""
        reply = await self._http_get(_query(symbols, data_types, source, params))
        result: MarketData = {}
        self._collect(reply, result, remember=source is None and not params)
        return result

    # --- subscribe ---------------------------------------------------------------------------

    async def subscribe(
        self,
        symbols: Iterable[str] | str,
        data_types: Iterable[DataType | str] | DataType | str,
        handler: SnapshotHandler,
        *,
        ask_hub: bool = True,
    ) -> MarketDataSubscription:
        """Follow the pairs: ``handler(snapshot)`` on every update, and ``get_data`` answers
        them from the L1 cache. The hub is asked to stream them where a source can (unless
        ``ask_hub`` is False: then call :meth:`request_streams` when the hub is there).
        """
        if not callable(handler):
            raise TypeError("handler must be callable")
        query = _query(symbols, data_types, None, None)
        pairs = query_pairs(query, self._settings.max_pairs_per_request)
        subscription = MarketDataSubscription(pairs, handler)

        def on_update(message: Message) -> Awaitable[None] | None:
            # Plain, not async: a plain handler then costs no coroutine per update.
            snapshot = message.payload
            if isinstance(snapshot, Snapshot) and self._remember(snapshot):
                return handler(snapshot)
            return None

        for symbol, data_type in subscription.pairs:
            topic = marketdata_topic(data_type, symbol)
            subscription.bus_subscriptions.append(await self.bus.subscribe(topic, on_update))
            self._followed[(symbol, data_type)] = self._followed.get((symbol, data_type), 0) + 1
        if ask_hub:
            await self.request_streams(query.symbols, query.data_types)
        return subscription

    async def request_streams(
        self,
        symbols: Iterable[str] | str,
        data_types: Iterable[DataType | str] | DataType | str,
    ) -> int:
        """Ask the hub to stream the pairs, and keep their current values; how many it sent.
        Raises a :class:`MarketDataError` when the hub does not answer.
        """
        reply = await self._request(SUBSCRIBE_TOPIC, _query(symbols, data_types, None, None), None)
        for snapshot in reply.snapshots:
            self._remember(snapshot)
        return len(reply.snapshots)

    async def unsubscribe(self, subscription: MarketDataSubscription) -> None:
        for bus_subscription in subscription.bus_subscriptions:
            await self.bus.unsubscribe(bus_subscription)
        for pair in subscription.pairs:
            left = self._followed.get(pair, 0) - 1
            if left > 0:
                self._followed[pair] = left
            else:
                self._followed.pop(pair, None)

    def stats(self) -> dict[str, int]:
        return {
            **self.counts,
            "merged_requests": self._batcher.merged,
            "l1_entries": len(self._l1),
            "followed": len(self._followed),
        }

    # --- the failover chain ------------------------------------------------------------------

    async def _ask(self, query: MarketDataQuery, timeout: float | None) -> MarketDataReply:
        """What the snapshot keys hold fresh, and the hub's answer for the rest.

        Here, behind the batcher, so that the calls of one tick share one read of the keys
        and then, for what they lacked, one request (a cold start still merges).
        """
        canonical = query.source is None and not query.params
        if not (canonical and self._settings.snapshot_reads and self.bus.keeps_snapshots):
            return await self._ask_hub(query, timeout)
        pairs = query_pairs(query, self._settings.max_pairs_per_request)
        budget = self._settings.failover_after_s
        known = await self._from_snapshots(
            pairs, budget if timeout is None else min(budget, timeout)
        )
        if not known:
            return await self._ask_hub(query, timeout)
        rest = [pair for pair in pairs if pair not in known]
        if not rest:
            return MarketDataReply(snapshots=list(known.values()), failures=[])
        reply = await self._ask_hub(_query_of(rest, None, None), timeout)
        return MarketDataReply(
            snapshots=[*known.values(),
                       *(s for s in reply.snapshots if (s.symbol, s.data_type) not in known)],
            failures=[f for f in reply.failures if (f.symbol, f.data_type) not in known],
        )  # fmt: skip

    async def _from_snapshots(self, pairs: list[Pair], budget_s: float) -> dict[Pair, Snapshot]:
        """The pairs whose snapshot key holds a value fresh by its TTL: stamped by the hub
        (``ts_event``) no longer than a TTL before this process's clock, nor more than a TTL
        after it (a clock that far apart is not to be trusted with freshness). A read that
        fails, or takes longer than ``budget_s``, leaves every pair to the hub."""
        topics = [marketdata_topic(data_type, symbol) for symbol, data_type in pairs]
        try:
            async with asyncio.timeout(budget_s):
                found = await self.bus.snapshots(topics)
        except (MessageBusError, TimeoutError) as exc:
            self.counts["snapshot_read_failures"] += 1
            logger.warning("market-data snapshots unread, asking the hub: %s", exc)
            return {}
        now_ns = self._clock.now_ns()
        known: dict[Pair, Snapshot] = {}
        for pair, message in zip(pairs, found, strict=True):
            snapshot = None if message is None else message.payload
            if (
                isinstance(snapshot, Snapshot)
                and not snapshot.stale
                and (snapshot.symbol, snapshot.data_type) == pair
                and -(ttl := self._ttl_ns[pair[1]]) <= now_ns - snapshot.ts_event <= ttl
            ):
                known[pair] = snapshot
        self.counts["snapshot_hits"] += len(known)
        return known

    async def _ask_hub(self, query: MarketDataQuery, timeout: float | None) -> MarketDataReply:
        """The hub's answer over the bus, else over HTTP."""
        try:
            return await self._request(GET_TOPIC, query, timeout)
        except _UNREACHABLE as failure:
            bus_failure: MarketDataError = failure
            logger.warning("hub not answering on the bus (%s); trying HTTP", bus_failure)
        try:
            reply = await self._http_get(query)
        except _UNREACHABLE as http_failure:
            self.counts["hub_unreachable"] += 1
            timed_out = isinstance(bus_failure, MarketDataTimeout) or isinstance(
                http_failure, MarketDataTimeout
            )
            kind = MarketDataTimeout if timed_out else SourceUnavailableError
            raise kind(
                f"the hub answered neither on the bus ({bus_failure}) "
                f"nor at {self.hub_http_url} ({http_failure})"
            ) from http_failure
        self.counts["http_fallbacks"] += 1
        return reply

    async def _request(
        self, topic: str, query: MarketDataQuery, timeout: float | None
    ) -> MarketDataReply:
        try:
            reply = await self.bus.request(topic, query, timeout=timeout)
        except RemoteError as exc:
            raise market_data_error(exc.code, str(exc).partition(": ")[2]) from None
        except RequestTimeout as exc:
            raise MarketDataTimeout(f"no answer from the hub: {exc}") from None
        except MessageBusError as exc:
            raise SourceUnavailableError(f"the hub cannot be reached on the bus: {exc}") from None
        self.counts["bus_requests"] += 1
        payload = reply.payload
        return (
            payload
            if isinstance(payload, MarketDataReply)
            else msgspec.convert(payload, MarketDataReply)
        )

    async def _http_get(self, query: MarketDataQuery) -> MarketDataReply:
        if self._http is None:
            raise MarketDataError("the market-data client is not started: use 'async with md:'")
        params = {
            "symbols": ",".join(query.symbols),
            "types": ",".join(t.value for t in query.data_types),
            "engine": self.bus.engine.value,
            "timeout": str(self._settings.request_timeout),
            **query.params,
        }
        if query.source is not None:
            params["source"] = query.source
        try:
            response = await self._http.get("/v1/marketdata", params=params)
        except httpx.TimeoutException as exc:
            raise MarketDataTimeout(f"the hub at {self.hub_http_url} timed out: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(
                f"the hub at {self.hub_http_url} is unreachable: {exc!r}"
            ) from None
        try:
            reply = _reply_decoder.decode(response.content)
        except msgspec.DecodeError:
            raise SourceUnavailableError(
                f"the hub at {self.hub_http_url} answered {response.status_code} without data"
            ) from None
        if not reply.snapshots and any(f.code == "standby" for f in reply.failures):
            # Another hub serves: as unreachable as a dead one, so the stale value comes next.
            raise SourceUnavailableError(f"the hub at {self.hub_http_url} is on standby")
        return reply

    async def _stale(self, pairs: list[Pair], failure: MarketDataError) -> MarketDataReply:
        """The last values of ``pairs``, marked stale; else, only with
        ``STARMESH_DEV_SIMULATED_FALLBACK``, simulated ones; else ``failure``."""
        now = self._clock.monotonic()
        snapshots = []
        for pair in pairs:
            cached = self._l1.get(pair)
            if cached is None:
                simulated = await self._simulated(pair)
                if simulated is None:
                    raise type(failure)(
                        f"{failure}, and nothing is cached for {_names(pairs)}"
                    ) from failure
                snapshots.append(simulated)
                continue
            snapshot, received = cached
            snapshots.append(msgspec.structs.replace(snapshot, stale=True, age_s=now - received))
            self.counts["stale_served"] += 1
        return MarketDataReply(snapshots=snapshots)

    async def _simulated(self, pair: Pair) -> Snapshot | None:
        """A made-up value, for development only (off unless the setting says so)."""
        if not self._settings.dev_simulated_fallback:
            return None
        if self._simulator is None:
            from starmesh.marketdata.sources.simulated import SimulatedSource

            logger.warning(
                "market data: the hub is unreachable and nothing is cached; serving SIMULATED "
                "values (STARMESH_DEV_SIMULATED_FALLBACK is on: never in production)"
            )
            self._simulator = SimulatedSource(clock=self._clock)
        symbol, data_type = pair
        if data_type not in self._simulator.data_types:
            return None
        data = await self._simulator.fetch(DataRequest.of("simulated", data_type, symbol))
        self.counts["simulated_served"] += 1
        return Snapshot(
            symbol=symbol, data_type=data_type, seq=0, ts_event=self._clock.now_ns(),
            source=SIMULATED_FALLBACK, data=data, stale=True,
        )  # fmt: skip

    # --- L1 ----------------------------------------------------------------------------------

    def _collect(self, reply: MarketDataReply, result: MarketData, *, remember: bool) -> None:
        for snapshot in reply.snapshots:
            result.setdefault(snapshot.symbol, {})[snapshot.data_type] = snapshot
            if remember and not snapshot.stale:
                self._remember(snapshot)
        if reply.failures:
            first = reply.failures[0]
            details = "; ".join(
                f"{f.symbol} {f.data_type.value}: {f.message}" for f in reply.failures
            )
            error = market_data_error(first.code, details)
            error.partial = result  # type: ignore[attr-defined]
            raise error

    def _remember(self, snapshot: Snapshot) -> bool:
        """Keep ``snapshot`` in L1 unless a newer one is there; False if it is out of date."""
        pair = (snapshot.symbol, snapshot.data_type)
        kept = self._l1.get(pair)
        if kept is not None and (kept[0].epoch, kept[0].seq) > (snapshot.epoch, snapshot.seq):
            return False  # an older value (a restarted hub's count starts again, in a new epoch)
        # The same value again is the hub vouching for it now: its age starts over.
        self._l1[pair] = (snapshot, self._clock.monotonic())
        self._l1.move_to_end(pair)
        if len(self._l1) > _L1_LIMIT:
            self._l1.popitem(last=False)
        return True


def _query_of(
    pairs: list[Pair], source: str | None, params: Mapping[str, str] | None
) -> MarketDataQuery:
    """A query for ``pairs``: their symbols by their data types (a few pairs more where they
    are not a full grid; an answer keeps only what was asked)."""
    return MarketDataQuery(
        symbols=list(dict.fromkeys(symbol for symbol, _ in pairs)),
        data_types=list(dict.fromkeys(data_type for _, data_type in pairs)),
        source=source,
        params=dict(params or {}),
    )


def _query(
    symbols: Iterable[str] | str,
    data_types: Iterable[DataType | str] | DataType | str,
    source: str | None,
    params: Mapping[str, str] | None,
) -> MarketDataQuery:
    symbol_list = [symbols] if isinstance(symbols, str) else list(symbols)
    if not symbol_list:
        raise InvalidRequestError("no symbols: ask for at least one, e.g. symbols=['AAPL']")
    for symbol in symbol_list:
        if not isinstance(symbol, str) or not symbol.strip():
            raise InvalidRequestError(f"not a symbol: {symbol!r}")
    kinds = [data_types] if isinstance(data_types, DataType | str) else list(data_types)
    if not kinds:
        raise InvalidRequestError("no data types: ask for at least one, e.g. DataType.QUOTE")
    try:
        parsed = [DataType(kind) for kind in kinds]
    except ValueError:
        valid = ", ".join(t.value for t in DataType)
        raise InvalidRequestError(f"unsupported data type in {kinds!r}; use {valid}") from None
    return MarketDataQuery(
        symbols=symbol_list, data_types=parsed, source=source, params=dict(params or {})
    )


def _names(pairs: list[Pair]) -> str:
    return ", ".join(f"{s} {t.value}" for s, t in pairs[:5]) + (" ..." if len(pairs) > 5 else "")
