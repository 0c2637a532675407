"""``simulated``: a deterministic market for development, tests and demos.

Each symbol follows its own seeded random walk in the clock's time: a geometric Brownian
mid whose volatility itself mean-reverts (so quiet and busy spells cluster), with rare
downward jumps for risk and VPIN engines to react to. Quotes, trades and books derive from
the mid; bars, fundamentals and economic series are generated from seeds, so the same
seed and the same clock readings always give the same data.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Final

from starmesh.core.clock import Clock, MonotonicClock
from starmesh.core.enums import DataType
from starmesh.core.errors import InvalidRequestError, UnknownSymbolError, UnsupportedDataTypeError
from starmesh.core.payloads import (
    Bar,
    BarSeries,
    BookLevel2,
    EconomicObservation,
    EconomicSeries,
    Fundamental,
    MarketData,
    Quote,
    Trade,
)
from starmesh.marketdata.source import DataRequest, RateLimit, SourceStatus

__all__ = ["DEFAULT_UNIVERSE", "SimulatedSource"]

DEFAULT_UNIVERSE: Final = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "GOOG",
    "META",
    "BRK.B",
    "LLY",
    "AVGO",
    "JPM",
    "TSLA",
    "UNH",
    "XOM",
    "V",
    "MA",
    "JNJ",
    "PG",
    "HD",
    "COST",
    "MRK",
    "ABBV",
    "CVX",
    "CRM",
    "BAC",
    "NFLX",
    "AMD",
    "PEP",
    "KO",
    "WMT",
    "TMO",
    "ADBE",
    "LIN",
    "MCD",
    "CSCO",
    "ACN",
    "ABT",
    "ORCL",
    "DHR",
    "WFC",
    "INTU",
    "DIS",
    "QCOM",
    "TXN",
    "VZ",
    "CAT",
    "AMGN",
    "IBM",
    "PM",
    "GE",
    "NOW",
    "SPGI",
    "UNP",
    "NEE",
    "CMCSA",
    "HON",
    "LOW",
    "AMAT",
    "UBER",
    "GS",
    "RTX",
    "PFE",
    "BKNG",
    "ISRG",
    "T",
    "ELV",
    "SYK",
    "BLK",
    "PLD",
    "MS",
    "AXP",
    "SCHW",
    "TJX",
    "DE",
    "LMT",
    "C",
    "MDT",
    "VRTX",
    "ADP",
    "GILD",
    "MMC",
    "CB",
    "REGN",
    "LRCX",
    "ADI",
    "ETN",
    "BSX",
    "MU",
    "PANW",
    "CI",
    "SBUX",
    "ZTS",
    "BX",
    "SO",
    "SPY",
    "QQQ",
    "IWM",
    "DIA",
    "TLT",
    "GLD",
]
_SECTORS: Final[dict[str, str]] = {
    **dict.fromkeys(
        [
            "AAPL",
            "MSFT",
            "NVDA",
            "AVGO",
            "CRM",
            "AMD",
            "ADBE",
            "CSCO",
            "ACN",
            "ORCL",
            "INTU",
            "QCOM",
            "TXN",
            "IBM",
            "NOW",
            "AMAT",
            "LRCX",
            "ADI",
            "MU",
            "PANW",
        ],
        "Information Technology",
    ),
    **dict.fromkeys(
        ["GOOGL", "GOOG", "META", "NFLX", "DIS", "VZ", "CMCSA", "T"], "Communication Services"
    ),
    **dict.fromkeys(
        ["AMZN", "TSLA", "HD", "MCD", "LOW", "BKNG", "TJX", "SBUX"], "Consumer Discretionary"
    ),
    **dict.fromkeys(["PG", "COST", "PEP", "KO", "WMT", "PM"], "Consumer Staples"),
    **dict.fromkeys(["XOM", "CVX"], "Energy"),
    **dict.fromkeys(
        [
            "BRK.B",
            "JPM",
            "V",
            "MA",
            "BAC",
            "WFC",
            "SPGI",
            "GS",
            "BLK",
            "MS",
            "AXP",
            "SCHW",
            "C",
            "MMC",
            "CB",
            "BX",
        ],
        "Financials",
    ),
    **dict.fromkeys(
        [
            "LLY",
            "UNH",
            "JNJ",
            "MRK",
            "ABBV",
            "TMO",
            "ABT",
            "DHR",
            "AMGN",
            "PFE",
            "ISRG",
            "ELV",
            "SYK",
            "MDT",
            "VRTX",
            "GILD",
            "REGN",
            "BSX",
            "CI",
            "ZTS",
        ],
        "Health Care",
    ),
    **dict.fromkeys(
        ["CAT", "GE", "UNP", "HON", "UBER", "RTX", "DE", "LMT", "ADP", "ETN"], "Industrials"
    ),
    **dict.fromkeys(["LIN"], "Materials"),
    **dict.fromkeys(["PLD"], "Real Estate"),
    **dict.fromkeys(["NEE", "SO"], "Utilities"),
    **dict.fromkeys(["SPY", "QQQ", "IWM", "DIA", "TLT", "GLD"], "Funds"),
}
"""GICS sectors of the default universe (its exchange-traded funds are "Funds")."""
_SYNTHETIC: Final = re.compile(r"^SIM\d{4}$")
_SECONDS_PER_YEAR: Final = 252 * 6.5 * 3600
_INTERVALS: Final = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86_400}
_ECONOMIC: Final = {
    # id: (title, unit, start value, monthly drift, monthly noise)
    "UNRATE": ("Unemployment Rate", "%", 4.0, 0.0, 0.08),
    "CPIAUCSL": (
        "Consumer Price Index for All Urban Consumers",
        "index 1982-84=100",
        300.0,
        0.25,
        0.3,
    ),
    "FEDFUNDS": ("Federal Funds Effective Rate", "%", 4.5, 0.0, 0.05),
    "DGS10": ("10-Year Treasury Constant Maturity Rate", "%", 4.2, 0.0, 0.12),
    "GDP": ("Gross Domestic Product", "billions of USD", 29_000.0, 120.0, 60.0),
}


_SYNTHETIC_SECTORS: Final = sorted(set(_SECTORS.values()) - {"Funds"})


class _Walk:
    """One symbol's price process."""

    __slots__ = ("log_vol", "mid", "random", "t")

    def __init__(self, seed: int, symbol: str, t: float) -> None:
        self.random = random.Random(seed ^ zlib.crc32(symbol.encode()))
        self.mid = round(self.random.uniform(20, 500), 2)
        self.log_vol = math.log(self.random.uniform(0.15, 0.45))
        self.t = t

    def advance(self, t: float) -> None:
        dt = t - self.t
        if dt <= 0:
            return
        self.t = t
        draw = self.random.gauss
        # Volatility mean-reverts to 25% a year within about an hour: busy spells cluster.
        self.log_vol += 0.0005 * dt * (math.log(0.25) - self.log_vol) + 0.01 * math.sqrt(dt) * draw(
            0, 1
        )
        sigma = math.exp(self.log_vol) / math.sqrt(_SECONDS_PER_YEAR)
        step = sigma * math.sqrt(dt) * draw(0, 1) - 0.5 * sigma * sigma * dt
        if self.random.random() < 1 - math.exp(-dt / 3_600):  # about one jump an hour
            step += draw(-0.02, 0.01)
        self.mid = max(0.01, self.mid * math.exp(step))

    @property
    def volatility(self) -> float:
        return math.exp(self.log_vol)


class SimulatedSource:
    """A seeded market. ``universe`` lists its symbols; ``SIM0000``-``SIM9999`` also exist."""

    def __init__(
        self,
        *,
        seed: int = 7,
        clock: Clock | None = None,
        universe: Sequence[str] = DEFAULT_UNIVERSE,
        stream_interval_s: float = 0.1,
        speed: float = 1.0,
    ) -> None:
        """``speed``: simulated seconds per second of the clock (a demo wants jumps sooner)."""
        if speed <= 0:
            raise InvalidRequestError("speed must be positive")
        self._seed = seed
        self._clock = clock or MonotonicClock()
        self._speed = speed
        self._epoch = self._clock.monotonic()
        self._universe = frozenset(universe)
        self._stream_interval_s = stream_interval_s
        self._walks: dict[str, _Walk] = {}

    @property
    def name(self) -> str:
        return "simulated"

    @property
    def data_types(self) -> frozenset[DataType]:
        return frozenset(
            {DataType.QUOTE, DataType.TRADE, DataType.LEVEL2, DataType.BAR, DataType.FUNDAMENTAL,
             DataType.ECONOMIC}
        )  # fmt: skip

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(1_000, 1.0)

    def status(self) -> SourceStatus:
        return SourceStatus(name=self.name, state="configured", detail="in-process", connections=0)

    async def aclose(self) -> None:
        return None

    async def fetch(self, request: DataRequest) -> MarketData:
        kind = request.data_type
        if kind is DataType.ECONOMIC:
            return self._economic(request.symbol)
        walk = self._walk(request.symbol)
        if kind is DataType.QUOTE:
            return self._quote(request.symbol, walk)
        if kind is DataType.TRADE:
            return self._trade(request.symbol, walk)
        if kind is DataType.LEVEL2:
            return self._book(request.symbol, walk)
        if kind is DataType.BAR:
            return self._bars(request)
        if kind is DataType.FUNDAMENTAL:
            return self._fundamental(request.symbol, walk)
        raise UnsupportedDataTypeError(f"the simulated source does not serve {kind.value}")

    async def stream(
        self, symbols: list[str], data_types: list[DataType]
    ) -> AsyncIterator[tuple[str, DataType, MarketData]]:
        live = [t for t in data_types if t in (DataType.QUOTE, DataType.TRADE, DataType.LEVEL2)]
        if not live:
            raise UnsupportedDataTypeError("the simulated source streams quotes, trades and books")
        for symbol in symbols:
            self._walk(symbol)  # unknown symbols fail now, not mid-stream
        # Each symbol updates once per interval, the symbols spread evenly over it (a market's
        # updates do not come in one burst), at a fixed rate whatever the consumer's pace.
        loop = asyncio.get_running_loop()
        step = self._stream_interval_s / len(symbols)
        due = loop.time()
        while True:
            for symbol in symbols:
                for kind in live:
                    value = await self.fetch(DataRequest(self.name, kind, symbol))
                    yield symbol, kind, value
                due = max(due + step, loop.time() - self._stream_interval_s)
                await asyncio.sleep(max(0.0, due - loop.time()))

    def crash(self, symbol: str, drop: float) -> float:
        """Make ``symbol``'s price fall by ``drop`` (a fraction) at once, as in a flash crash;
        the process goes on from there. Returns the new mid.
        """
        if not 0 < drop < 1:
            raise InvalidRequestError(f"drop is a fraction between 0 and 1, got {drop!r}")
        walk = self._walk(symbol)
        walk.mid = max(0.01, walk.mid * (1 - drop))
        return walk.mid

    # --- generators --------------------------------------------------------------------------

    def _walk(self, symbol: str) -> _Walk:
        walk = self._walks.get(symbol)
        if walk is None:
            if symbol not in self._universe and not _SYNTHETIC.match(symbol):
                raise UnknownSymbolError(
                    f"the simulated source has no symbol {symbol!r}; it lists "
                    f"{len(self._universe)} symbols such as AAPL and SPY, and SIM0000-SIM9999"
                )
            walk = self._walks[symbol] = _Walk(self._seed, symbol, self._time())
        walk.advance(self._time())
        return walk

    def _time(self) -> float:
        return self._epoch + (self._clock.monotonic() - self._epoch) * self._speed

    def _quote(self, symbol: str, walk: _Walk) -> Quote:
        spread = max(0.01, round(walk.mid * (1 + 20 * walk.volatility) * 1e-4, 2))
        bid = round(walk.mid - spread / 2, 2)
        busy = 1 + 4 * walk.volatility  # sizes grow with volatility: volume clusters with it
        return Quote(
            symbol=symbol,
            bid=bid,
            ask=round(bid + spread, 2),
            bid_size=100 * max(1, round(walk.random.expovariate(1 / (5 * busy)))),
            ask_size=100 * max(1, round(walk.random.expovariate(1 / (5 * busy)))),
        )

    def _trade(self, symbol: str, walk: _Walk) -> Trade:
        quote = self._quote(symbol, walk)
        buy = walk.random.random() < 0.5
        return Trade(
            symbol=symbol,
            price=quote.ask if buy else quote.bid,
            size=max(1.0, round(walk.random.lognormvariate(4.0, 1.0))),
            aggressor="BUY" if buy else "SELL",
        )

    def _book(self, symbol: str, walk: _Walk) -> BookLevel2:
        quote = self._quote(symbol, walk)
        tick = 0.01
        depth = range(10)

        def size(level: int) -> float:
            return float(100 * max(1, round(walk.random.expovariate(1 / (5 + 3 * level)))))

        return BookLevel2(
            symbol=symbol,
            bids=[(round(quote.bid - i * tick, 2), size(i)) for i in depth],
            asks=[(round(quote.ask + i * tick, 2), size(i)) for i in depth],
        )

    def _bars(self, request: DataRequest) -> BarSeries:
        symbol = request.symbol
        walk = self._walk(symbol)
        interval = request.param("interval", "1d") or "1d"
        seconds = _INTERVALS.get(interval)
        if seconds is None:
            raise InvalidRequestError(f"interval must be one of {', '.join(_INTERVALS)}")
        lookback = _positive_int(request.param("lookback", "1"), "lookback", 10_000)
        end = self._clock.now_ns() // (seconds * 10**9) * seconds  # the current bar's start, s
        rng = random.Random(self._seed ^ zlib.crc32(f"{symbol}/{interval}/{end}".encode()))
        sigma = walk.volatility * math.sqrt(seconds / _SECONDS_PER_YEAR)
        close = walk.mid
        bars: list[Bar] = []
        for i in range(lookback):  # backwards from the current mid
            open_ = close * math.exp(-rng.gauss(0, sigma))
            high = max(open_, close) * math.exp(abs(rng.gauss(0, sigma / 2)))
            low = min(open_, close) * math.exp(-abs(rng.gauss(0, sigma / 2)))
            bars.append(
                Bar(
                    symbol=symbol, interval=interval, ts_start=(end - i * seconds) * 10**9,
                    open=round(open_, 2), high=round(high, 2), low=round(low, 2),
                    close=round(close, 2), volume=float(round(rng.lognormvariate(13, 0.5))),
                )
            )  # fmt: skip
            close = open_
        bars.reverse()
        return BarSeries(symbol=symbol, interval=interval, bars=bars)

    def _fundamental(self, symbol: str, walk: _Walk) -> Fundamental:
        rng = random.Random(self._seed ^ zlib.crc32(f"fundamental/{symbol}".encode()))
        eps = round(rng.uniform(0.5, 12.0), 2)
        shares = rng.uniform(0.2, 16.0) * 1e9
        revenue = round(shares * rng.uniform(5, 60))
        sector = _SECTORS.get(symbol) or _SYNTHETIC_SECTORS[zlib.crc32(symbol.encode()) % 11]
        return Fundamental(
            symbol=symbol,
            period="TTM",
            currency="USD",
            sector=sector,
            metrics={
                "eps": eps,
                "pe": round(walk.mid / eps, 2),
                "market_cap": round(walk.mid * shares),
                "shares_outstanding": round(shares),
                "revenue": revenue,
                "book_value": round(shares * rng.uniform(2.0, 80.0)),
                "free_cash_flow": round(revenue * rng.uniform(0.02, 0.25)),
                "dividend_yield": round(rng.uniform(0, 0.04), 4),
                "beta": round(rng.uniform(0.5, 1.8), 2),
            },
        )

    def _economic(self, series_id: str) -> EconomicSeries:
        spec = _ECONOMIC.get(series_id)
        if spec is None:
            raise UnknownSymbolError(
                f"the simulated source has no economic series {series_id!r}; "
                f"it has {', '.join(_ECONOMIC)}"
            )
        title, unit, start, drift, noise = spec
        rng = random.Random(self._seed ^ zlib.crc32(series_id.encode()))
        year, month = 2016, 1
        value = start - drift * 120
        observations = []
        for _ in range(120):  # ten years of monthly values
            value += drift + rng.gauss(0, noise)
            observations.append(EconomicObservation(f"{year:04d}-{month:02d}-01", round(value, 3)))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return EconomicSeries(
            series_id=series_id,
            title=title,
            observations=observations,
            unit=unit,
            frequency="monthly",
        )


def _positive_int(raw: str | None, name: str, limit: int) -> int:
    try:
        value = int(raw or "")
    except ValueError:
        raise InvalidRequestError(f"{name} must be a whole number, got {raw!r}") from None
    if not 0 < value <= limit:
        raise InvalidRequestError(f"{name} must be between 1 and {limit:,}, got {value}")
    return value
