"""``replay``: real historical bars, replayed at a chosen speed.

By default it replays the daily S&P 500 (``^GSPC``) and NASDAQ Composite (``^IXIC``) series,
1999-2018, that the ``arch`` package ships, read at run time from the installed package. Any
CSV or Parquet file with date/open/high/low/close/volume columns can be added per symbol.

Files are read in a worker thread, once per symbol, never on the event loop (a series is
tens of thousands of rows). The replay's present starts at the first bar (or on ``start``,
a date) and moves forward ``speed`` seconds of history per second of the clock (the default,
86,400, replays a trading day per second). A fetch returns the bars up to the present, never
beyond it: a ``lookback`` of 250 at the first bar is one bar. A quote is the latest close with
a one-basis-point spread (the data has no quotes; this is a stand-in, said so in its name).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import importlib.util
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Final

import polars as pl

from starmesh.core.clock import Clock, MonotonicClock
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    UnknownSymbolError,
    UnsupportedDataTypeError,
)
from starmesh.core.payloads import Bar, BarSeries, MarketData, Quote
from starmesh.marketdata.source import DataRequest, RateLimit, SourceStatus

__all__ = ["ReplaySource", "default_replay_files", "load_bars"]

_DAY_S: Final = 86_400
_DATE_FORMATS: Final = ("%Y-%m-%d", "%m/%d/%Y", "%Y-%m-%d %H:%M:%S")


def default_replay_files() -> dict[str, Path]:
    """The ``arch`` package's daily S&P 500 and NASDAQ files, where it is installed.

    Found without importing ``arch``: that would load scipy and statsmodels (seconds) only to
    learn where two files are.
    """
    spec = importlib.util.find_spec("arch")
    locations = spec.submodule_search_locations if spec is not None else None
    root = Path(next(iter(locations))) if locations else Path("arch-not-installed")
    data = root / "data"
    return {
        "^GSPC": data / "sp500" / "sp500.csv.gz",
        "^IXIC": data / "nasdaq" / "nasdaq.csv.gz",
    }


def load_bars(symbol: str, path: Path, interval: str = "1d") -> list[Bar]:
    """Bars from a CSV (optionally gzipped) or Parquet file, oldest first."""
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    columns = {name.lower().replace("_", " "): name for name in frame.columns}
    try:
        date = columns.get("date") or columns.get("datetime") or columns["time"]
        names = [columns[c] for c in ("open", "high", "low", "close", "volume")]
    except KeyError:
        raise MalformedResponseError(
            f"{path} needs date, open, high, low, close and volume columns; it has {frame.columns}"
        ) from None
    when = pl.col(date)
    if frame.schema[date] == pl.String:
        when = pl.coalesce(*(when.str.to_datetime(f, strict=False) for f in _DATE_FORMATS))
    frame = frame.select(when.dt.epoch("ns").alias("ts"), *names).drop_nulls().sort("ts")
    return [
        Bar(
            symbol=symbol,
            interval=interval,
            ts_start=ts,
            open=o,
            high=h,
            low=low,
            close=c,
            volume=float(v),
        )
        for ts, o, h, low, c, v in frame.iter_rows()
    ]


def _day_ns(day: dt.date | str | None) -> int | None:
    """Midnight UTC of ``day`` in UNIX ns (the loaded bars' dates are read as UTC)."""
    if day is None:
        return None
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise InvalidRequestError(
                f"replay start must be a date like 2008-09-15: {day!r}"
            ) from None
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1_000_000_000


class ReplaySource:
    def __init__(
        self,
        *,
        files: Mapping[str, Path] | None = None,
        speed: float = 86_400.0,
        clock: Clock | None = None,
        stream_interval_s: float = 0.1,
        loader: Callable[[str, Path], list[Bar]] = load_bars,
        follow_clock: bool = False,
        start: dt.date | str | None = None,
    ) -> None:
        """``follow_clock``: the replay's present is the clock's time (the last bar that
        opened at or before ``clock.now_ns()``), for a backtest whose clock runs in history's
        time; otherwise it starts at the first bar, or at the last bar on or before ``start``
        (a date, or ISO ``"2008-09-15"``: history before it is there to look back on), and
        moves ``speed`` seconds of history per second of the clock."""
        if speed <= 0:
            raise InvalidRequestError("replay speed must be positive")
        self._start_ns = _day_ns(start)
        self._files = dict(files) if files is not None else default_replay_files()
        self._speed = speed
        self._clock = clock or MonotonicClock()
        self._stream_interval_s = stream_interval_s
        self._bars: dict[str, list[Bar]] = {}
        self._loader = loader
        self._loading = asyncio.Lock()
        self._started = self._clock.monotonic()
        self._follow_clock = follow_clock

    @property
    def name(self) -> str:
        return "replay"

    @property
    def data_types(self) -> frozenset[DataType]:
        return frozenset({DataType.BAR, DataType.QUOTE})

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(1_000, 1.0)

    @property
    def symbols(self) -> list[str]:
        return list(self._files)

    def status(self) -> SourceStatus:
        missing = [f"{s} ({p})" for s, p in self._files.items() if not p.exists()]
        if missing:
            detail = f"missing files: {', '.join(missing)}"
            return SourceStatus(name=self.name, state="unconfigured", detail=detail)
        return SourceStatus(name=self.name, state="configured", detail=f"{len(self._files)} series")

    async def aclose(self) -> None:
        return None

    async def fetch(self, request: DataRequest) -> MarketData:
        if request.data_type not in self.data_types:
            raise UnsupportedDataTypeError(
                f"the replay source serves bars and quotes, not {request.data_type.value}"
            )
        bars = await self._series(request.symbol)
        position = self._position(bars)
        if request.data_type is DataType.QUOTE:
            return self.quote_of(bars[position])
        if (request.param("interval") or "1d") != "1d":
            raise InvalidRequestError("the replay data is daily: interval must be 1d")
        lookback = request.param("lookback", "1") or "1"
        if not lookback.isdigit() or int(lookback) < 1:
            raise InvalidRequestError(f"lookback must be a positive whole number, got {lookback!r}")
        first = max(0, position + 1 - int(lookback))
        return BarSeries(symbol=request.symbol, interval="1d", bars=bars[first : position + 1])

    async def position(self, symbol: str) -> int:
        """Index of the latest bar of ``symbol`` replayed so far."""
        return self._position(await self._series(symbol))

    async def series(self, symbol: str) -> list[Bar]:
        """Every bar of ``symbol``, oldest first (read from its file once)."""
        return await self._series(symbol)

    def _position(self, bars: list[Bar]) -> int:
        if self._follow_clock:
            now = self._clock.now_ns()
            return max(0, bisect.bisect_right(bars, now, key=lambda bar: bar.ts_start) - 1)
        elapsed_days = (self._clock.monotonic() - self._started) * self._speed / _DAY_S
        return min(len(bars) - 1, self._first(bars) + int(elapsed_days))

    def _first(self, bars: list[Bar]) -> int:
        """Where the replay starts: the last bar on or before ``start``, else the first."""
        if self._start_ns is None:
            return 0
        return max(0, bisect.bisect_right(bars, self._start_ns, key=lambda bar: bar.ts_start) - 1)

    async def stream(
        self, symbols: list[str], data_types: list[DataType]
    ) -> AsyncIterator[tuple[str, DataType, MarketData]]:
        shown = dict.fromkeys(symbols, -1)
        series = {symbol: await self._series(symbol) for symbol in symbols}
        while True:
            for symbol in symbols:
                bars = series[symbol]
                position = self._position(bars)
                if position != shown[symbol]:
                    shown[symbol] = position
                    bar = bars[position]
                    if DataType.BAR in data_types:
                        yield (
                            symbol,
                            DataType.BAR,
                            BarSeries(symbol=symbol, interval="1d", bars=[bar]),
                        )
                    if DataType.QUOTE in data_types:
                        yield symbol, DataType.QUOTE, self.quote_of(bar)
            await asyncio.sleep(self._stream_interval_s)

    async def _series(self, symbol: str) -> list[Bar]:
        bars = self._bars.get(symbol)
        if bars is not None:
            return bars
        path = self._files.get(symbol)
        if path is None:
            raise UnknownSymbolError(
                f"the replay source has no series {symbol!r}; it has {', '.join(self._files)}"
            )
        async with self._loading:  # one read per file, however many ask at once
            bars = self._bars.get(symbol)
            if bars is None:
                bars = await asyncio.to_thread(self._loader, symbol, path)
                if not bars:
                    raise MalformedResponseError(f"{path} has no bars")
                self._bars[symbol] = bars
        return bars

    @staticmethod
    def quote_of(bar: Bar) -> Quote:
        """The stand-in quote of a bar: its close with a one-basis-point spread."""
        half_spread = bar.close * 0.5e-4
        size = max(1.0, round(bar.volume / 390 / 100) * 100)  # a minute's volume, in lots
        return Quote(
            symbol=bar.symbol,
            bid=round(bar.close - half_spread, 4),
            ask=round(bar.close + half_spread, 4),
            bid_size=size,
            ask_size=size,
        )
