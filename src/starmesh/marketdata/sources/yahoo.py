"""``yahoo``: bars and last prices from Yahoo Finance's chart API.

A symbol is Yahoo's ticker (``AAPL``, ``^GSPC``, ``EURUSD=X``, ``BRK-B``, ``7203.T``).

- ``bar``: ``v8/finance/chart/{symbol}?interval=...&range=...`` as a :class:`BarSeries` from
  ``chart.result[0].timestamp`` and ``indicators.quote[0]``. Params: ``interval`` (``1m``,
  ``2m``, ``5m``, ``15m``, ``30m``, ``1h``, ``1d``, ``1w``), ``range`` (Yahoo's: ``1d`` ...
  ``max``; the default suits the interval), ``lookback`` (the last N bars). Yahoo leaves
  ``null`` in the arrays for minutes without trades: such bars are skipped (a bar with prices
  but no volume gets volume 0).
- ``trade``: the chart's ``meta.regularMarketPrice``, a last price with no size, so a
  :class:`Trade` whose ``size`` is 0 (unknown).

An unknown symbol is HTTP 404 with ``chart.error`` (``{"code": "Not Found", ...}``); a bad
interval or range is 400/422 with the same shape. Yahoo publishes no limits and answers
HTTP 429 to clients it finds too eager; the default declared limit is one request a second
and a 429 is retried with backoff.
"""

from __future__ import annotations

from typing import Final, Unpack
from urllib.parse import quote

import msgspec

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    MarketDataError,
    UnknownSymbolError,
)
from starmesh.core.payloads import Bar, BarSeries, MarketData, Trade
from starmesh.marketdata.source import DataRequest, RateLimit
from starmesh.marketdata.sources.http import (
    USER_AGENT,
    HttpOptions,
    HttpSource,
)
from starmesh.marketdata.sources.params import choice_param, positive_int_param

__all__ = ["DEFAULT_RATE_LIMIT", "YahooSource"]

DEFAULT_RATE_LIMIT: Final = RateLimit(1, 1.0)
BASE_URL: Final = "https://query1.finance.yahoo.com"
_INTERVALS: Final = {
    "1m": "1m", "2m": "2m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "1d": "1d",
    "1w": "1wk",
}  # fmt: skip
_DEFAULT_RANGE: Final = {
    "1m": "1d", "2m": "5d", "5m": "5d", "15m": "1mo", "30m": "1mo", "1h": "3mo", "1d": "1y",
    "1w": "5y",
}  # fmt: skip
_RANGES: Final = ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max")

Column = list[float | None]


class _Quote(msgspec.Struct, frozen=True):
    open: Column = msgspec.field(default_factory=list)
    high: Column = msgspec.field(default_factory=list)
    low: Column = msgspec.field(default_factory=list)
    close: Column = msgspec.field(default_factory=list)
    volume: Column = msgspec.field(default_factory=list)


class _Indicators(msgspec.Struct, frozen=True):
    quote: list[_Quote]


class _Meta(msgspec.Struct, frozen=True):
    symbol: str
    regularMarketPrice: float | None = None


class _Result(msgspec.Struct, frozen=True):
    meta: _Meta
    indicators: _Indicators
    timestamp: list[int] = msgspec.field(default_factory=list)


class _ChartError(msgspec.Struct, frozen=True):
    code: str
    description: str = ""


class _Chart(msgspec.Struct, frozen=True):
    result: list[_Result] | None = None
    error: _ChartError | None = None


class _Answer(msgspec.Struct, frozen=True):
    chart: _Chart


class YahooSource(HttpSource):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        user_agent: str = USER_AGENT,
        **options: Unpack[HttpOptions],
    ) -> None:
        super().__init__(
            name="yahoo",
            data_types=(DataType.BAR, DataType.TRADE),
            clock=clock,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            default_base_url=BASE_URL,
            headers={"User-Agent": user_agent},
            **options,
        )

    async def fetch(self, request: DataRequest) -> MarketData:
        self._check(request)
        if not request.symbol:
            raise InvalidRequestError("yahoo: the symbol must be a Yahoo ticker, e.g. AAPL")
        if request.data_type is DataType.TRADE:
            result = await self._chart(request.symbol, "1d", "1d")
            price = result.meta.regularMarketPrice
            if price is None:
                raise MalformedResponseError(f"yahoo {request.symbol}: no regularMarketPrice")
            return Trade(symbol=request.symbol, price=price, size=0.0)
        interval = choice_param(request, "interval", "1d", _INTERVALS)
        range_ = choice_param(request, "range", _DEFAULT_RANGE[interval], _RANGES)
        lookback = positive_int_param(request, "lookback", None, 100_000)
        result = await self._chart(request.symbol, _INTERVALS[interval], range_)
        bars = _bars(request.symbol, interval, result)
        if lookback is not None:
            bars = bars[-lookback:]
        return BarSeries(symbol=request.symbol, interval=interval, bars=bars)

    async def _chart(self, symbol: str, interval: str, range_: str) -> _Result:
        response = await self._get(
            f"/v8/finance/chart/{quote(symbol, safe='')}",
            {"interval": interval, "range": range_, "includePrePost": "false"},
        )
        chart = self._convert(self._json(response), _Answer, "chart answer").chart
        if chart.error is not None:
            raise _chart_error(symbol, chart.error)
        if not chart.result:
            raise MalformedResponseError(f"yahoo {symbol}: chart.result is empty")
        return chart.result[0]


def _chart_error(symbol: str, error: _ChartError) -> MarketDataError:
    message = f"yahoo {symbol}: {error.code}: {error.description}"
    if error.code == "Not Found":
        return UnknownSymbolError(message)
    return InvalidRequestError(message)


def _bars(symbol: str, interval: str, result: _Result) -> list[Bar]:
    """The complete bars of a chart, oldest first; Yahoo's null rows are left out."""
    if not result.timestamp:
        return []
    if not result.indicators.quote:
        raise MalformedResponseError(f"yahoo {symbol}: no indicators.quote")
    quote_ = result.indicators.quote[0]
    columns = (quote_.open, quote_.high, quote_.low, quote_.close, quote_.volume)
    if any(len(column) != len(result.timestamp) for column in columns):
        raise MalformedResponseError(f"yahoo {symbol}: timestamp and quote arrays differ in length")
    bars = []
    for ts, open_, high, low, close, volume in zip(result.timestamp, *columns, strict=True):
        if open_ is None or high is None or low is None or close is None:
            continue
        bars.append(
            Bar(
                symbol=symbol, interval=interval, ts_start=ts * 10**9, open=open_, high=high,
                low=low, close=close, volume=volume or 0.0,
            )
        )  # fmt: skip
    return bars
