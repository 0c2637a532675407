"""Engines under test on the embedded bus and a simulated clock, fed by a real hub whose
source plays the prices a test chooses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starmesh import EngineType, create_messagebus_client
from starmesh.client.messagebus import MessageBusClient
from starmesh.core.clock import SimulatedClock
from starmesh.core.enums import DataType
from starmesh.core.errors import UnknownSymbolError
from starmesh.core.payloads import MarketData, Quote, Trade
from starmesh.engines.base import Engine
from starmesh.marketdata.factory import create_marketdata_hub
from starmesh.marketdata.hub import MarketDataHub
from starmesh.marketdata.source import DataRequest, RateLimit, SourceStatus
from starmesh.platform.composition import build_context
from starmesh.platform.config import PlatformConfig
from starmesh.platform.registry import build_engine
from tests.helpers import Collector

START_NS = 1_767_709_800_000_000_000
SECOND = 1_000_000_000


class ScriptedSource:
    """A source whose values are whatever the test set last."""

    name = "scripted"
    data_types = frozenset({DataType.QUOTE, DataType.TRADE})
    rate_limit = RateLimit(1_000_000)

    def __init__(self) -> None:
        self.values: dict[tuple[str, DataType], MarketData] = {}

    async def fetch(self, request: DataRequest) -> MarketData:
        value = self.values.get((request.symbol, request.data_type))
        if value is None:
            raise UnknownSymbolError(f"nothing scripted for {request.symbol}")
        return value

    async def stream(
        self, symbols: list[str], data_types: list[DataType]
    ) -> AsyncIterator[tuple[str, DataType, MarketData]]:
        """Declared so the hub counts this source as streaming; the test pushes the values
        (the hub runs with ``streaming=False`` and never calls it)."""
        for _ in ():
            yield _

    def status(self) -> SourceStatus:
        return SourceStatus(name=self.name, state="configured")

    async def aclose(self) -> None:
        return None


class Market:
    """The hub, the clock and what the engines under test see."""

    def __init__(self, hub: MarketDataHub, source: ScriptedSource, clock: SimulatedClock) -> None:
        self.hub = hub
        self.source = source
        self.clock = clock

    async def quote(self, symbol: str, bid: float, ask: float | None = None) -> None:
        value = Quote(symbol=symbol, bid=bid, ask=bid + 0.02 if ask is None else ask,
                      bid_size=500, ask_size=500)  # fmt: skip
        self.source.values[(symbol, DataType.QUOTE)] = value
        await self.hub.ingest(self.source.name, symbol, DataType.QUOTE, value)
        await self.settle()

    async def trade(self, symbol: str, price: float, size: float) -> None:
        value = Trade(symbol=symbol, price=price, size=size)
        await self.hub.ingest(self.source.name, symbol, DataType.TRADE, value)
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Move the clock on, firing the engines' timers and handling what they send."""
        await self.clock.advance_to(self.clock.now_ns() + round(seconds * SECOND), self.settle)
        await self.settle()

    async def settle(self) -> None:
        await self.hub.bus.settle()


@asynccontextmanager
async def market() -> AsyncIterator[Market]:
    clock = SimulatedClock(START_NS)
    source = ScriptedSource()
    hub = create_marketdata_hub([source], clock=clock, streaming=False)
    async with hub:
        yield Market(hub, source, clock)


async def start_engine(
    kind: EngineType, config: PlatformConfig, clock: SimulatedClock, engines: list[Engine]
) -> Engine:
    engine = build_engine(kind, build_context(kind, config, clock=clock), config)
    await engine.start()
    engines.append(engine)
    return engine


@asynccontextmanager
async def watcher(*patterns: str) -> AsyncIterator[tuple[MessageBusClient, Collector]]:
    """A client of an engine type nobody under test is (the UI gateway), recording ``patterns``."""
    collector = Collector()
    client = create_messagebus_client(EngineType.WEBSOCKET)
    for pattern in patterns:
        await client.subscribe(pattern, collector)
    async with client:
        yield client, collector
