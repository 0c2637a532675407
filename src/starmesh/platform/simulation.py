"""The platform on a simulated clock, as fast as the CPU allows, the same every time.

The live platform's hub streams its market on the event loop's timers. Here the clock moves
only with the data: each event arrives at its own instant, every timer due before an event
fires before it, and every message an event causes is handled before the next event. Same
engines, same code, no wall time: a run with the same inputs gives the same fills.

Two markets: :class:`SimulatedMarketRun` feeds the simulated source at the instants its live
stream would (each symbol's quote, trade and book in turn); :class:`ReplayMarketRun` feeds the
replay's daily bars in date order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from starmesh.core.clock import SimulatedClock
from starmesh.core.enums import DataType
from starmesh.core.payloads import Bar, BarSeries, MarketData
from starmesh.marketdata.hub import MarketDataHub
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.replay import ReplaySource
from starmesh.marketdata.sources.simulated import SimulatedSource
from starmesh.platform.composition import Platform

__all__ = ["MARKET_OPEN_NS", "ReplayMarketRun", "SimulatedMarketRun"]

MARKET_OPEN_NS = 1_767_709_800_000_000_000
"""2026-01-06 14:30 UTC (9:30 New York), where a simulated run starts by default."""

Progress = Callable[[float], Awaitable[None]]


class _Driven:
    """A started :class:`Platform` on a :class:`SimulatedClock`, fed event by event."""

    def __init__(self, platform: Platform) -> None:
        if not isinstance(platform.clock, SimulatedClock):
            raise ValueError("a simulated run needs a platform on a SimulatedClock")
        if platform.hub is None:
            raise ValueError("start the platform first")
        self.platform = platform
        self.clock: SimulatedClock = platform.clock
        self.hub: MarketDataHub = platform.hub
        self._known = -1
        self._by_symbol: dict[str, list[tuple[str, DataType]]] = {}

    def followed(self, symbol: str) -> list[tuple[str, DataType]]:
        """(source, data type) of ``symbol`` the engines follow, in the order they asked."""
        if self.hub.streamed_count != self._known:  # the engines asked for more since
            self._known = self.hub.streamed_count
            self._by_symbol = {}
            for source, streamed, data_type in self.hub.streamed_pairs():
                self._by_symbol.setdefault(streamed, []).append((source, data_type))
        return self._by_symbol.get(symbol, [])

    async def at(self, ts_ns: int) -> None:
        """Move the clock to ``ts_ns``, firing the timers due on the way."""
        await self.clock.advance_to(max(ts_ns, self.clock.now_ns()), self.platform.settle)

    async def feed(self, source: str, symbol: str, data_type: DataType, data: MarketData) -> None:
        await self.hub.ingest(source, symbol, data_type, data)


class SimulatedMarketRun(_Driven):
    """The simulated source, at ``quotes_per_second`` over the platform's symbols in turn."""

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        if not isinstance(platform.source, SimulatedSource):
            raise ValueError("a simulated run needs the simulated source")
        self.source: SimulatedSource = platform.source
        self.step_ns = round(1e9 / platform.config.quotes_per_second)  # one symbol a step
        self.events = 0
        self._next = 0

    async def run_for(self, seconds: float, on_progress: Progress | None = None) -> int:
        """Advance ``seconds`` of simulated time; returns how many events were fed."""
        symbols = self.platform.config.symbols
        settle = self.platform.settle
        begin = self.clock.now_ns()
        end = begin + round(seconds * 1e9)
        fed = 0
        while self.clock.now_ns() + self.step_ns <= end:
            await self.at(self.clock.now_ns() + self.step_ns)
            symbol = symbols[self._next % len(symbols)]
            self._next += 1
            for source, data_type in self.followed(symbol):
                data = await self.source.fetch(DataRequest(source, data_type, symbol))
                await self.feed(source, symbol, data_type, data)
                fed += 1
            await settle()
            if on_progress is not None:
                await on_progress((self.clock.now_ns() - begin) / (end - begin))
        await self.at(end)
        self.events += fed
        return fed


class ReplayMarketRun(_Driven):
    """The replay's daily bars of the platform's symbols between ``start`` and ``end``
    (inclusive), in date order: each bar as the day's bar and its stand-in quote.
    """

    def __init__(
        self, platform: Platform, *, start: dt.date | None = None, end: dt.date | None = None
    ) -> None:
        super().__init__(platform)
        if not isinstance(platform.source, ReplaySource):
            raise ValueError("a replay run needs the replay source")
        self.source: ReplaySource = platform.source
        self.start = start
        self.end = end
        self.first_ns = 0
        self.last_ns = 0

    async def timeline(self) -> list[tuple[int, int, Bar]]:
        """(open time, symbol order, bar) of every bar in range, oldest first."""
        events = []
        for order, symbol in enumerate(self.platform.config.symbols):
            for bar in await self.source.series(symbol):
                day = dt.datetime.fromtimestamp(bar.ts_start / 1e9, tz=dt.UTC).date()
                if (self.start is None or day >= self.start) and (
                    self.end is None or day <= self.end
                ):
                    events.append((bar.ts_start, order, bar))
        events.sort(key=lambda event: (event[0], event[1]))
        return events

    async def run(self, on_progress: Progress | None = None) -> int:
        timeline = await self.timeline()
        if not timeline:
            raise ValueError(f"no bars between {self.start} and {self.end}")
        self.first_ns, self.last_ns = timeline[0][0], timeline[-1][0]
        settle = self.platform.settle
        fed = 0
        for index, (ts_ns, _, bar) in enumerate(timeline):
            await self.at(ts_ns)
            for source, data_type in self.followed(bar.symbol):
                if data_type is DataType.QUOTE:
                    await self.feed(source, bar.symbol, data_type, self.source.quote_of(bar))
                elif data_type is DataType.BAR:
                    series = BarSeries(symbol=bar.symbol, interval="1d", bars=[bar])
                    await self.feed(source, bar.symbol, data_type, series)
                else:
                    continue
                fed += 1
            await settle()
            if on_progress is not None:
                await on_progress((index + 1) / len(timeline))
        return fed
