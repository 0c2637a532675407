"""``ibkr``: quotes, last trades, depth and historical bars from TWS / IB Gateway via ib_async.

A symbol is ``SYMBOL[:SECTYPE[:EXCHANGE[:CURRENCY]]]`` (``AAPL``: a US stock on SMART in USD;
``EUR:CASH``: EUR.USD on IDEALPRO), qualified once per symbol. Quotes and trades come from
one snapshot, depth from ``reqMktDepth`` until both sides have a level (then cancelled), bars
from ``reqHistoricalDataAsync``; docs/sources.md lists the params. The one ``IB`` session is
the source's connection: opened lazily and read-only on the first fetch, reopened on a later
fetch if it dropped. TWS takes at most 50 messages a second, hence 45 fetches a second
declared. IB's historical pacing (no identical request within 15 s, at most 60 in 10
minutes) is enforced here with the injected clock: a request over it is refused as
throttled, saying when to retry, rather than sent to earn a pacing violation. TWS errors
(``RequestError``, as the session sets ``RaiseRequestErrors``) are mapped by code.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, time
from typing import Any, Final, Protocol, TypeGuard, TypeVar

from ib_async import BarData, Contract, RequestError, Ticker

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MarketDataError,
    SourceNotConfiguredError,
    SourceThrottledError,
    SourceUnauthorizedError,
    SourceUnavailableError,
    UnknownSymbolError,
    UnsupportedDataTypeError,
)
from starmesh.core.payloads import Bar, BarSeries, BookLevel2, MarketData, Quote, Trade
from starmesh.marketdata.budget import remaining
from starmesh.marketdata.source import DataRequest, RateLimit, SourceStatus
from starmesh.marketdata.sources.params import choice_param, positive_int_param, to_ns

__all__ = ["DEFAULT_RATE_LIMIT", "HistoricalPacing", "IBClient", "IbkrSource", "parse_contract"]

T = TypeVar("T")
DEFAULT_RATE_LIMIT: Final = RateLimit(45, 1.0)
_SEC_TYPES: Final = frozenset({"STK", "CASH", "IND", "FUT", "CONTFUT", "CFD", "CMDTY", "CRYPTO"})
_BAR_SIZES: Final = {
    "1m": "1 min", "5m": "5 mins", "15m": "15 mins", "30m": "30 mins", "1h": "1 hour",
    "1d": "1 day", "1w": "1 week",
}  # fmt: skip
_DEFAULT_DURATION: Final = {
    "1m": "1 D", "5m": "2 D", "15m": "5 D", "30m": "10 D", "1h": "1 M", "1d": "1 Y", "1w": "5 Y",
}  # fmt: skip
_WHAT: Final = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST")
_DURATION: Final = re.compile(r"[1-9][0-9]{0,4} [SDWMY]")
_UNAUTHORIZED: Final = frozenset({354, 10089, 10090, 10091, 10168, 10186, 10197})
_THROTTLED: Final = frozenset({100, 309, 420})
_INVALID: Final = frozenset({320, 321, 322})
_SETTINGS: Final = frozenset({"ibkr_host", "ibkr_port", "ibkr_client_id"})
_MISSING: Final = (
    "set STARMESH_IBKR_HOST, _PORT or _CLIENT_ID to reach TWS / IB Gateway "
    "(defaults 127.0.0.1, 4002, 17)"
)


class IBClient(Protocol):
    """The part of ``ib_async.IB`` this source calls; tests stand a double in for it."""

    errorEvent: Any
    """eventkit Event emitting ``(reqId, errorCode, errorString, contract)``."""

    def isConnected(self) -> bool: ...

    async def connectAsync(
        self, *, host: str, port: int, clientId: int, timeout: float | None, readonly: bool
    ) -> object: ...

    async def qualifyContractsAsync(
        self, *contracts: Contract
    ) -> Sequence[Contract | list[Contract | None] | None]: ...

    async def reqTickersAsync(self, *contracts: Contract) -> Sequence[Ticker]: ...

    def reqMktDepth(self, contract: Contract, *, numRows: int, isSmartDepth: bool) -> Ticker: ...

    def cancelMktDepth(self, contract: Contract, *, isSmartDepth: bool) -> object: ...

    async def reqHistoricalDataAsync(
        self, contract: Contract, endDateTime: str, durationStr: str, barSizeSetting: str,
        whatToShow: str, useRTH: bool, *, formatDate: int, timeout: float,
    ) -> Sequence[BarData]: ...  # fmt: skip

    def disconnect(self) -> object: ...


def _new_ib() -> IBClient:
    from ib_async import IB

    ib = IB()
    ib.RaiseRequestErrors = True  # a failed request raises RequestError instead of returning []
    return ib


def parse_contract(symbol: str) -> Contract:
    """The (unqualified) contract a ``SYMBOL[:SECTYPE[:EXCHANGE[:CURRENCY]]]`` names."""
    parts = symbol.split(":")
    if not 1 <= len(parts) <= 4 or not all(p.strip() for p in parts):
        raise InvalidRequestError(
            f"ibkr: the symbol must be SYMBOL[:SECTYPE[:EXCHANGE[:CURRENCY]]], got {symbol!r}"
        )
    padded = [p.strip().upper() for p in parts] + [""] * (4 - len(parts))
    ticker, sec_type, exchange, currency = padded
    sec_type = sec_type or "STK"
    if sec_type not in _SEC_TYPES:
        raise InvalidRequestError(f"ibkr: security type must be one of {', '.join(_SEC_TYPES)}")
    exchange = exchange or ("IDEALPRO" if sec_type == "CASH" else "SMART")
    return Contract(secType=sec_type, symbol=ticker, exchange=exchange, currency=currency or "USD")


class HistoricalPacing:
    """IB's historical-data pacing, counted with the injected clock.

    No identical request within ``identical_s``; at most ``max_requests`` in ``window_s``.
    """

    def __init__(
        self, clock: Clock, *, identical_s: float = 15.0, max_requests: int = 60,
        window_s: float = 600.0,
    ) -> None:  # fmt: skip
        self._clock = clock
        self._identical_s = identical_s
        self._max_requests = max_requests
        self._window_s = window_s
        self._sent: deque[float] = deque()
        self._last: dict[tuple[object, ...], float] = {}

    def admit(self, key: tuple[object, ...], what: str) -> None:
        """Count a request about to be sent, or refuse it as throttled."""
        now = self._clock.monotonic()
        while self._sent and now - self._sent[0] >= self._window_s:
            self._sent.popleft()
        self._last = {k: t for k, t in self._last.items() if now - t < self._identical_s}
        last = self._last.get(key)
        if last is not None:
            raise SourceThrottledError(
                f"ibkr pacing: the same historical request ({what}) was sent {now - last:.1f} s "
                f"ago; IB allows it once per {self._identical_s:g} s, retry in "
                f"{self._identical_s - (now - last):.1f} s"
            )
        if len(self._sent) >= self._max_requests:
            wait = self._window_s - (now - self._sent[0])
            raise SourceThrottledError(
                f"ibkr pacing: {self._max_requests} historical requests in the last "
                f"{self._window_s:g} s is IB's limit; the next is allowed in {wait:.0f} s"
            )
        self._sent.append(now)
        self._last[key] = now


class IbkrSource:
    def __init__(
        self, settings: Settings, clock: Clock, *, ib: IBClient | None = None,
        rate_limit: RateLimit = DEFAULT_RATE_LIMIT, connect_timeout: float = 10.0,
        request_timeout: float = 20.0, historical_timeout: float = 60.0,
        depth_timeout: float = 5.0, pacing: HistoricalPacing | None = None,
    ) -> None:  # fmt: skip
        self._ib = ib if ib is not None else _new_ib()
        # The README's rule: a source is configured by its own variables. TWS has defaults,
        # but with none of STARMESH_IBKR_* set nobody asked for it, so nothing connects.
        self._configured = bool(_SETTINGS & settings.model_fields_set)
        self._host = settings.ibkr_host
        self._port = settings.ibkr_port
        self._client_id = settings.ibkr_client_id
        self._rate_limit = rate_limit
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._historical_timeout = historical_timeout
        self._depth_timeout = depth_timeout
        self._pacing = pacing or HistoricalPacing(clock)
        self._contracts: dict[str, Contract] = {}
        self._connecting = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<IbkrSource {self._host}:{self._port} client {self._client_id}>"

    @property
    def name(self) -> str:
        return "ibkr"

    @property
    def data_types(self) -> frozenset[DataType]:
        return frozenset({DataType.QUOTE, DataType.TRADE, DataType.LEVEL2, DataType.BAR})

    @property
    def rate_limit(self) -> RateLimit:
        return self._rate_limit

    def status(self) -> SourceStatus:
        if not self._configured:
            return SourceStatus(self.name, "unconfigured", _MISSING)
        connected = self._ib.isConnected()
        where = f"TWS / IB Gateway at {self._host}:{self._port}, client id {self._client_id}"
        state = "connected" if connected else "connects on first fetch"
        return SourceStatus(self.name, "configured", f"{where}, {state}", int(connected))

    async def aclose(self) -> None:
        if self._ib.isConnected():
            self._ib.disconnect()

    async def fetch(self, request: DataRequest) -> MarketData:
        if not self._configured:
            raise SourceNotConfiguredError(f"ibkr is not configured: {_MISSING}")
        if request.data_type not in self.data_types:
            raise UnsupportedDataTypeError(
                f"ibkr serves quote, trade, level2 and bar, not {request.data_type.value}"
            )
        contract = parse_contract(request.symbol)
        if request.data_type is DataType.BAR:
            return await self._bars(request, contract)
        if request.data_type is DataType.LEVEL2:
            rows = positive_int_param(request, "rows", 5, 50) or 5
            smart = choice_param(request, "smart", "0", ("0", "1")) == "1"
            return await self._depth(request.symbol, contract, rows, smart)
        ticker = await self._snapshot(request.symbol, contract)
        if request.data_type is DataType.QUOTE:
            if not (_price(ticker.bid) and _price(ticker.ask)):
                raise SourceUnavailableError(
                    f"ibkr {request.symbol}: no bid/ask in the snapshot "
                    "(market closed or no market-data subscription)"
                )
            return Quote(
                symbol=request.symbol, bid=ticker.bid, ask=ticker.ask,
                bid_size=_size(ticker.bidSize), ask_size=_size(ticker.askSize),
            )  # fmt: skip
        if not _price(ticker.last):
            raise SourceUnavailableError(f"ibkr {request.symbol}: no last trade in the snapshot")
        return Trade(symbol=request.symbol, price=ticker.last, size=_size(ticker.lastSize))

    async def _connect(self) -> None:
        async with self._connecting:
            if self._ib.isConnected():
                return
            failure: SourceUnavailableError
            try:
                await self._ib.connectAsync(
                    host=self._host, port=self._port, clientId=self._client_id,
                    timeout=self._connect_timeout, readonly=True,
                )  # fmt: skip
                return
            except (OSError, TimeoutError) as exc:  # ConnectionError is an OSError
                failure = SourceUnavailableError(
                    f"ibkr: cannot connect to TWS / IB Gateway at {self._host}:{self._port} "
                    f"(client id {self._client_id}): {type(exc).__name__}: {exc}"
                )
            raise failure

    async def _call(self, symbol: str, call: Awaitable[T], timeout: float) -> T:
        """``call``'s result, with TWS's errors, timeouts and lost links mapped."""
        failure: MarketDataError
        timeout = remaining(timeout)  # the hub's caller may wait less than IB allows
        try:
            async with asyncio.timeout(timeout):
                return await call
        except RequestError as exc:
            failure = _request_error(symbol, exc.code, exc.message)
        except TimeoutError:
            failure = SourceUnavailableError(f"ibkr {symbol}: no answer within {timeout:g} s")
        except OSError as exc:  # ConnectionError: the link dropped mid-request
            failure = SourceUnavailableError(f"ibkr {symbol}: {type(exc).__name__}: {exc}")
        raise failure

    async def _qualified(self, symbol: str, contract: Contract) -> Contract:
        await self._connect()
        known = self._contracts.get(symbol)
        if known is None:
            found = await self._call(
                symbol, self._ib.qualifyContractsAsync(contract), self._request_timeout
            )
            match = found[0] if found else None
            if not isinstance(match, Contract):
                why = "ambiguous" if isinstance(match, list) else "not found"
                raise UnknownSymbolError(f"ibkr: no single contract for {symbol!r} ({why})")
            known = self._contracts[symbol] = match
        return known

    async def _snapshot(self, symbol: str, contract: Contract) -> Ticker:
        qualified = await self._qualified(symbol, contract)
        tickers = await self._call(
            symbol, self._ib.reqTickersAsync(qualified), self._request_timeout
        )
        if len(tickers) != 1:
            raise SourceUnavailableError(f"ibkr {symbol}: no snapshot")
        return tickers[0]

    async def _depth(self, symbol: str, contract: Contract, rows: int, smart: bool) -> BookLevel2:
        qualified = await self._qualified(symbol, contract)
        ticker = self._ib.reqMktDepth(qualified, numRows=rows, isSmartDepth=smart)
        ready = asyncio.Event()
        errors: list[MarketDataError] = []

        def on_update(*_: object) -> None:
            if ticker.domBids and ticker.domAsks:
                ready.set()

        def on_error(req_id: int, code: int, message: str, about: object = None) -> None:
            mine = isinstance(about, Contract) and about.conId == qualified.conId
            if mine and not 2100 <= code < 2200 and code != 10167:  # not a mere warning
                errors.append(_request_error(symbol, code, message))
                ready.set()

        ticker.updateEvent.connect(on_update)
        self._ib.errorEvent.connect(on_error)
        failure: MarketDataError | None = None
        try:
            if not (ticker.domBids and ticker.domAsks):
                async with asyncio.timeout(self._depth_timeout):
                    await ready.wait()
        except TimeoutError:
            failure = SourceUnavailableError(
                f"ibkr {symbol}: no two-sided depth within {self._depth_timeout:g} s"
            )
        finally:
            ticker.updateEvent.disconnect(on_update)
            self._ib.errorEvent.disconnect(on_error)
            self._ib.cancelMktDepth(qualified, isSmartDepth=smart)
        failure = errors[0] if errors else failure
        if failure is not None:
            raise failure
        return BookLevel2(
            symbol=symbol,
            bids=[(level.price, level.size) for level in ticker.domBids],
            asks=[(level.price, level.size) for level in ticker.domAsks],
        )

    async def _bars(self, request: DataRequest, contract: Contract) -> BarSeries:
        interval = choice_param(request, "interval", "1d", _BAR_SIZES)
        duration = request.param("duration") or _DEFAULT_DURATION[interval]
        if not _DURATION.fullmatch(duration):
            raise InvalidRequestError(
                f"ibkr: duration must be like '30 D' or '1 Y', got {duration!r}"
            )
        default_what = "MIDPOINT" if contract.secType == "CASH" else "TRADES"
        what = choice_param(request, "what", default_what, _WHAT)
        rth = choice_param(request, "rth", "1", ("0", "1")) == "1"
        lookback = positive_int_param(request, "lookback", None, 100_000)
        qualified = await self._qualified(request.symbol, contract)
        bar_size = _BAR_SIZES[interval]
        self._pacing.admit(
            (qualified.conId or request.symbol, duration, bar_size, what, rth),
            f"{request.symbol} {bar_size} over {duration}, {what}",
        )
        bars = await self._call(
            request.symbol,
            self._ib.reqHistoricalDataAsync(
                qualified, "", duration, bar_size, what, rth,
                formatDate=2, timeout=self._historical_timeout,
            ),
            self._historical_timeout + self._request_timeout,
        )  # fmt: skip
        if not bars:
            raise SourceUnavailableError(
                f"ibkr {request.symbol}: no historical bars (timed out, or no data for {duration})"
            )
        series = [_bar(request.symbol, interval, bar) for bar in bars]
        series.sort(key=lambda bar: bar.ts_start)
        if lookback is not None:
            series = series[-lookback:]
        return BarSeries(symbol=request.symbol, interval=interval, bars=series)


def _request_error(symbol: str, code: int, message: str) -> MarketDataError:
    """The error a TWS error code means."""
    text = f"ibkr {symbol}: TWS error {code}: {message}"
    lowered = message.lower()
    if code == 200:  # no security definition
        return UnknownSymbolError(text)
    if code in _THROTTLED or "pacing violation" in lowered:
        return SourceThrottledError(text)
    if code in _UNAUTHORIZED or "permission" in lowered or "not subscribed" in lowered:
        return SourceUnauthorizedError(text)
    if code in _INVALID:
        return InvalidRequestError(text)
    return SourceUnavailableError(text)


def _price(value: float | None) -> TypeGuard[float]:
    """Whether TWS sent a value: ib_async leaves NaN (or None), TWS sends -1, when it has none."""
    return isinstance(value, int | float) and math.isfinite(value) and value != -1


def _size(value: float | None) -> float:
    return max(0.0, value) if _price(value) else 0.0


def _bar(symbol: str, interval: str, bar: BarData) -> Bar:
    stamp = bar.date
    if not isinstance(stamp, datetime):  # a daily or longer bar: its date
        stamp = datetime.combine(stamp, time(), UTC)
    elif stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return Bar(
        symbol=symbol, interval=interval, ts_start=to_ns(stamp), open=bar.open, high=bar.high,
        low=bar.low, close=bar.close, volume=max(0.0, float(bar.volume)),
    )  # fmt: skip
