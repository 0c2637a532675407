"""What an engine uses for market data: ``get_data`` and ``subscribe``, through the hub.

A pair the engine *follows* (``subscribe``) is kept current in an in-process L1 cache by the
MarketData Bus broadcast, so ``get_data`` answers it without leaving the process, with the
sequence number every other engine sees. Anything else is asked of the hub. If the hub does
not answer over the bus, the client asks it over HTTP; if that fails too, it serves the last
value it has seen, marked stale; only then does it raise.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Self

import httpx
import msgspec

from starmesh.client.messagebus import MessageBusClient
from starmesh.client.subscription import Subscription
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

__all__ = ["MarketData", "MarketDataClient", "MarketDataSubscription", "SnapshotHandler"]

logger = logging.getLogger(__name__)

MarketData = dict[str, dict[DataType, Snapshot]]
"""symbol -> data type -> snapshot."""
SnapshotHandler = Callable[[Snapshot], Awaitable[None] | None]
Pair = tuple[str, DataType]
_L1_LIMIT = 100_000
_reply_decoder = msgspec.json.Decoder(MarketDataReply)
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
        self, bus: MessageBusClient, *, owns_bus: bool, settings: Settings, hub_http_url: str
    ) -> None:
        self.bus = bus
        self._owns_bus = owns_bus
        self._settings = settings
        self.hub_http_url = hub_http_url.rstrip("/")
        self._http: httpx.AsyncClient | None = None
        self._l1: OrderedDict[Pair, tuple[Snapshot, float]] = OrderedDict()
        self._followed: dict[Pair, int] = {}
        self.counts = {
            "l1_hits": 0,
            "bus_requests": 0,
            "http_fallbacks": 0,
            "hub_unreachable": 0,
            "stale_served": 0,
        }
        self._batcher = RequestBatcher(self._ask)

    async def start(self) -> None:
        if self._owns_bus:
            await self.bus.start()
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.hub_http_url, timeout=self._settings.request_timeout
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
        for pair in query_pairs(query):
            cached = self._l1.get(pair) if canonical and pair in self._followed else None
            if cached is not None:
                self.counts["l1_hits"] += 1
                result.setdefault(pair[0], {})[pair[1]] = cached[0]
            else:
                missing.append(pair)
        if missing:
            asked = query
            if result:  # some pairs came from L1: ask only for the rest
                asked = MarketDataQuery(
                    symbols=list(dict.fromkeys(s for s, _ in missing)),
                    data_types=list(dict.fromkeys(t for _, t in missing)),
                    source=source,
                    params=dict(params or {}),
                )
            try:
                reply = await self._batcher.submit(asked, missing, timeout)
            except _UNREACHABLE as failure:
                reply = self._stale(missing, failure)
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
    ) -> MarketDataSubscription:
        """Follow the pairs: ``handler(snapshot)`` on every update, and ``get_data`` answers
        them from the L1 cache. The hub is asked to stream them where a source can.
        """
        if not callable(handler):
            raise TypeError("handler must be callable")
        query = _query(symbols, data_types, None, None)
        subscription = MarketDataSubscription(query_pairs(query), handler)
        for symbol, data_type in subscription.pairs:

            async def on_update(message: Message, handler: SnapshotHandler = handler) -> None:
                snapshot = message.payload
                if isinstance(snapshot, Snapshot) and self._remember(snapshot):
                    result = handler(snapshot)
                    if inspect.isawaitable(result):
                        await result

            topic = marketdata_topic(data_type, symbol)
            subscription.bus_subscriptions.append(await self.bus.subscribe(topic, on_update))
            self._followed[(symbol, data_type)] = self._followed.get((symbol, data_type), 0) + 1
        reply = await self._request(SUBSCRIBE_TOPIC, query, None)
        for snapshot in reply.snapshots:
            self._remember(snapshot)
        return subscription

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
            return _reply_decoder.decode(response.content)
        except msgspec.DecodeError:
            raise SourceUnavailableError(
                f"the hub at {self.hub_http_url} answered {response.status_code} without data"
            ) from None

    def _stale(self, pairs: list[Pair], failure: MarketDataError) -> MarketDataReply:
        """The last values of ``pairs``, marked stale; ``failure`` if one of them is missing."""
        now = time.monotonic()
        snapshots = []
        for pair in pairs:
            cached = self._l1.get(pair)
            if cached is None:
                raise type(failure)(
                    f"{failure}, and nothing is cached for {_names(pairs)}"
                ) from failure
            snapshot, received = cached
            snapshots.append(msgspec.structs.replace(snapshot, stale=True, age_s=now - received))
        self.counts["stale_served"] += len(snapshots)
        return MarketDataReply(snapshots=snapshots)

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
        if kept is not None and kept[0].seq >= snapshot.seq:
            return kept[0].seq == snapshot.seq
        self._l1[pair] = (snapshot, time.monotonic())
        self._l1.move_to_end(pair)
        if len(self._l1) > _L1_LIMIT:
            self._l1.popitem(last=False)
        return True


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
