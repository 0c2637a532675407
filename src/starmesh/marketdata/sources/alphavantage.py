"""``alphavantage``: bars, last prices and company overviews from Alpha Vantage.

One endpoint, ``https://www.alphavantage.co/query?function=...&symbol=...&apikey=...``:

- ``bar``: ``TIME_SERIES_DAILY`` (``interval=1d``, the default) or ``TIME_SERIES_INTRADAY``
  (``1m``, ``5m``, ``15m``, ``30m``, ``1h``) as a :class:`BarSeries`. Params: ``outputsize``
  (``compact``, the latest 100 bars, or ``full``), ``lookback`` (keep the last N bars).
- ``trade``: ``GLOBAL_QUOTE``. It has the last price but no bid, ask or trade size, so it
  maps to a :class:`Trade` whose ``size`` is 0 (unknown), not to a made-up quote.
- ``fundamental``: ``OVERVIEW`` as a trailing-twelve-month :class:`Fundamental`.

A symbol is Alpha Vantage's ticker (``IBM``, ``TSCO.LON``). The provider answers almost
everything with HTTP 200: throttling comes back as a ``Note`` (older wording) or an
``Information`` key, a bad symbol or function as ``Error Message``, a missing or invalid
key or a premium-only feature as one of those with its own wording, and an unknown symbol
for ``GLOBAL_QUOTE`` / ``OVERVIEW`` as an empty object. Each is mapped to its error here.
The free tier allows 25 requests a day, the default declared limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Unpack
from zoneinfo import ZoneInfo

import msgspec

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    MalformedResponseError,
    SourceThrottledError,
    SourceUnauthorizedError,
    UnknownSymbolError,
)
from starmesh.core.payloads import Bar, BarSeries, Fundamental, MarketData, Trade
from starmesh.marketdata.source import DataRequest, RateLimit
from starmesh.marketdata.sources.credentials import credential
from starmesh.marketdata.sources.http import (
    HttpOptions,
    HttpSource,
)
from starmesh.marketdata.sources.params import choice_param, positive_int_param, to_float, to_ns

__all__ = ["DEFAULT_RATE_LIMIT", "AlphaVantageSource"]

DEFAULT_RATE_LIMIT: Final = RateLimit(25, 86_400)
"""The free tier: 25 requests a day."""
BASE_URL: Final = "https://www.alphavantage.co"
MISSING: Final = (
    "set STARMESH_ALPHAVANTAGE_KEY (free key: https://www.alphavantage.co/support/#api-key)"
)
_INTRADAY: Final = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "60min"}
_INTERVALS: Final = ("1d", *_INTRADAY)
_THROTTLE_WORDS: Final = ("rate limit", "call frequency", "requests per day", "calls per")
_KEY_WORDS: Final = ("apikey", "api key", "premium")
_MISSING_VALUES: Final = frozenset({"None", "-", "", "N/A"})
_OVERVIEW_METRICS: Final = {
    "MarketCapitalization": "market_cap", "EBITDA": "ebitda", "PERatio": "pe", "PEGRatio": "peg",
    "BookValue": "book_value_per_share", "DividendPerShare": "dividend_per_share",
    "DividendYield": "dividend_yield", "EPS": "eps", "RevenuePerShareTTM": "revenue_per_share",
    "ProfitMargin": "profit_margin", "OperatingMarginTTM": "operating_margin",
    "ReturnOnAssetsTTM": "return_on_assets", "ReturnOnEquityTTM": "return_on_equity",
    "RevenueTTM": "revenue", "GrossProfitTTM": "gross_profit", "DilutedEPSTTM": "diluted_eps",
    "QuarterlyEarningsGrowthYOY": "quarterly_earnings_growth_yoy",
    "QuarterlyRevenueGrowthYOY": "quarterly_revenue_growth_yoy",
    "AnalystTargetPrice": "analyst_target_price", "TrailingPE": "trailing_pe",
    "ForwardPE": "forward_pe", "PriceToSalesRatioTTM": "price_to_sales",
    "PriceToBookRatio": "price_to_book", "EVToRevenue": "ev_to_revenue",
    "EVToEBITDA": "ev_to_ebitda", "Beta": "beta", "52WeekHigh": "high_52_week",
    "52WeekLow": "low_52_week", "SharesOutstanding": "shares_outstanding",
}  # fmt: skip


class _Candle(msgspec.Struct, frozen=True):
    open: str = msgspec.field(name="1. open")
    high: str = msgspec.field(name="2. high")
    low: str = msgspec.field(name="3. low")
    close: str = msgspec.field(name="4. close")
    volume: str = msgspec.field(name="5. volume")


class _GlobalQuote(msgspec.Struct, frozen=True):
    symbol: str = msgspec.field(name="01. symbol")
    price: str = msgspec.field(name="05. price")


class AlphaVantageSource(HttpSource):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        **options: Unpack[HttpOptions],
    ) -> None:
        key = credential("query", "apikey", settings.alphavantage_key)
        super().__init__(
            name="alphavantage",
            data_types=(DataType.BAR, DataType.TRADE, DataType.FUNDAMENTAL),
            clock=clock,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            default_base_url=BASE_URL,
            credentials=key,
            missing=MISSING,
            **options,
        )

    async def fetch(self, request: DataRequest) -> MarketData:
        self._check(request)
        if request.data_type is DataType.BAR:
            return await self._bars(request)
        if request.data_type is DataType.TRADE:
            return await self._trade(request.symbol)
        return await self._overview(request.symbol)

    async def _query(self, function: str, symbol: str, **params: str) -> dict[str, Any]:
        response = await self._get("/query", {"function": function, "symbol": symbol, **params})
        data = self._json(response)
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"alphavantage {function} {symbol}: expected an object, got {type(data).__name__}"
            )
        for key in ("Error Message", "Information", "Note"):
            text = data.get(key)
            if isinstance(text, str):
                raise self._message_error(key, f"alphavantage {function} {symbol}", text)
        return data

    def _message_error(
        self, key: str, what: str, text: str
    ) -> SourceThrottledError | SourceUnauthorizedError | UnknownSymbolError:
        """What a 200 answer with an ``Error Message``, ``Information`` or ``Note`` means."""
        message = f"{what}: {self._scrub(text)}"
        lowered = text.lower()
        if any(word in lowered for word in _THROTTLE_WORDS):
            return SourceThrottledError(message)
        if any(word in lowered for word in _KEY_WORDS):
            return SourceUnauthorizedError(message)
        if key == "Error Message":
            return UnknownSymbolError(message)
        return SourceThrottledError(message)

    async def _bars(self, request: DataRequest) -> BarSeries:
        interval = choice_param(request, "interval", "1d", _INTERVALS)
        outputsize = choice_param(request, "outputsize", "compact", ("compact", "full"))
        lookback = positive_int_param(request, "lookback", None, 100_000)
        if interval == "1d":
            data = await self._query("TIME_SERIES_DAILY", request.symbol, outputsize=outputsize)
            series_key = "Time Series (Daily)"
        else:
            av_interval = _INTRADAY[interval]
            data = await self._query(
                "TIME_SERIES_INTRADAY", request.symbol, interval=av_interval, outputsize=outputsize
            )
            series_key = f"Time Series ({av_interval})"
        if series_key not in data:
            raise MalformedResponseError(
                f"alphavantage {request.symbol}: no {series_key!r} in the answer "
                f"(keys: {', '.join(data) or 'none'})"
            )
        candles = self._convert(data[series_key], dict[str, _Candle], series_key)
        zone = _time_zone(data.get("Meta Data"))
        bars = sorted(
            (
                _bar(request.symbol, interval, stamp, candle, zone)
                for stamp, candle in candles.items()
            ),
            key=lambda bar: bar.ts_start,
        )
        if lookback is not None:
            bars = bars[-lookback:]
        return BarSeries(symbol=request.symbol, interval=interval, bars=bars)

    async def _trade(self, symbol: str) -> Trade:
        data = await self._query("GLOBAL_QUOTE", symbol)
        quote = data.get("Global Quote")
        if quote == {}:
            raise UnknownSymbolError(f"alphavantage GLOBAL_QUOTE: no symbol {symbol!r}")
        last = self._convert(quote, _GlobalQuote, "Global Quote")
        return Trade(
            symbol=symbol, price=to_float(last.price, "alphavantage '05. price'"), size=0.0
        )

    async def _overview(self, symbol: str) -> Fundamental:
        data = await self._query("OVERVIEW", symbol)
        if not data:
            raise UnknownSymbolError(f"alphavantage OVERVIEW: no symbol {symbol!r}")
        if "Symbol" not in data:
            raise MalformedResponseError(
                f"alphavantage OVERVIEW {symbol}: no 'Symbol' in the answer"
            )
        metrics = {
            name: to_float(data[field], f"alphavantage OVERVIEW {field!r}")
            for field, name in _OVERVIEW_METRICS.items()
            if field in data and data[field] not in _MISSING_VALUES
        }
        currency = data.get("Currency")
        return Fundamental(
            symbol=symbol,
            period="TTM",
            metrics=metrics,
            currency=currency if isinstance(currency, str) else None,
        )


def _time_zone(meta: object) -> ZoneInfo:
    """The zone the answer's timestamps are in (``US/Eastern`` for US listings)."""
    name = "US/Eastern"
    if isinstance(meta, dict):
        name = next((v for k, v in meta.items() if k.endswith("Time Zone")), name)
    try:
        return ZoneInfo(str(name))
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise MalformedResponseError(f"alphavantage: unknown time zone {name!r}") from None


def _bar(symbol: str, interval: str, stamp: str, candle: _Candle, zone: ZoneInfo) -> Bar:
    """One bar; a daily bar starts at midnight of its date in the exchange's zone."""
    try:
        start = datetime.fromisoformat(stamp).replace(tzinfo=zone)
    except ValueError:
        raise MalformedResponseError(f"alphavantage: bad timestamp {stamp!r}") from None
    where = f"alphavantage bar {stamp}"
    return Bar(
        symbol=symbol,
        interval=interval,
        ts_start=to_ns(start),
        open=to_float(candle.open, where),
        high=to_float(candle.high, where),
        low=to_float(candle.low, where),
        close=to_float(candle.close, where),
        volume=to_float(candle.volume, where),
    )
