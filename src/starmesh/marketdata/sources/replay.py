"""``replay``: real historical bars, replayed at a chosen speed.

By default it replays the daily S&P 500 (``^GSPC``) and NASDAQ Composite (``^IXIC``) series,
1999-2018, that the ``arch`` package ships, read at run time from the installed package. Any
CSV or Parquet file with date/open/high/low/close/volume columns can be added per symbol.

The replay position starts at the first bar and moves forward ``speed`` seconds of history
per second of the clock (the default, 86,400, replays a trading day per second). A fetch
returns the bars up to that position; a quote is the latest close with a one-basis-point
spread (the data has no quotes; this is a stand-in, said so in its name).
"""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import AsyncIterator, Mapping
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
    """The ``arch`` package's daily S&P 500 and NASDAQ files, where it is installed."""
    data = importlib.resources.files("arch.data")
    return {
        "^GSPC": Path(str(data / "sp500" / "sp500.csv.gz")),
        "^IXIC": Path(str(data / "nasdaq" / "nasdaq.csv.gz")),
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


class ReplaySource:
    def __init__(
        self,
        *,
        files: Mapping[str, Path] | None = None,
        speed: float = 86_400.0,
        clock: Clock | None = None,
        stream_interval_s: float = 0.1,
    ) -> None:
        if speed <= 0:
            raise InvalidRequestError("replay speed must be positive")
        self._files = dict(files) if files is not None else default_replay_files()
        self._speed = speed
        self._clock = clock or MonotonicClock()
        self._stream_interval_s = stream_interval_s
        self._bars: dict[str, list[Bar]] = {}
        self._started = self._clock.monotonic()

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
        bars = self._series(request.symbol)
        position = self.position(request.symbol)
        if request.data_type is DataType.QUOTE:
            return self._quote(bars[position])
        if (request.param("interval") or "1d") != "1d":
            raise InvalidRequestError("the replay data is daily: interval must be 1d")
        lookback = request.param("lookback", "1") or "1"
        if not lookback.isdigit() or int(lookback) < 1:
            raise InvalidRequestError(f"lookback must be a positive whole number, got {lookback!r}")
        first = max(0, position + 1 - int(lookback))
        return BarSeries(symbol=request.symbol, interval="1d", bars=bars[first : position + 1])

    def position(self, symbol: str) -> int:
        """Index of the latest bar replayed so far."""
        bars = self._series(symbol)
        elapsed_days = (self._clock.monotonic() - self._started) * self._speed / _DAY_S
        return min(len(bars) - 1, int(elapsed_days))

    async def stream(
        self, symbols: list[str], data_types: list[DataType]
    ) -> AsyncIterator[tuple[str, DataType, MarketData]]:
        shown = dict.fromkeys(symbols, -1)
        for symbol in symbols:
            self._series(symbol)
        while True:
            for symbol in symbols:
                position = self.position(symbol)
                if position != shown[symbol]:
                    shown[symbol] = position
                    bar = self._series(symbol)[position]
                    if DataType.BAR in data_types:
                        yield (
                            symbol,
                            DataType.BAR,
                            BarSeries(symbol=symbol, interval="1d", bars=[bar]),
                        )
                    if DataType.QUOTE in data_types:
                        yield symbol, DataType.QUOTE, self._quote(bar)
            await asyncio.sleep(self._stream_interval_s)

    def _series(self, symbol: str) -> list[Bar]:
        bars = self._bars.get(symbol)
        if bars is None:
            path = self._files.get(symbol)
            if path is None:
                raise UnknownSymbolError(
                    f"the replay source has no series {symbol!r}; it has {', '.join(self._files)}"
                )
            bars = self._bars[symbol] = load_bars(symbol, path)
            if not bars:
                raise MalformedResponseError(f"{path} has no bars")
        return bars

    @staticmethod
    def _quote(bar: Bar) -> Quote:
        half_spread = bar.close * 0.5e-4
        size = max(1.0, round(bar.volume / 390 / 100) * 100)  # a minute's volume, in lots
        return Quote(
            symbol=bar.symbol,
            bid=round(bar.close - half_spread, 4),
            ask=round(bar.close + half_spread, 4),
            bid_size=size,
            ask_size=size,
        )
