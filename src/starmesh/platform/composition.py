"""The composition root: one place builds the hub, the clients, the clock and the engines, and
hands each engine what it needs (NautilusTrader's kernel is the model).

The same :class:`Platform` runs every engine in one process on the embedded bus (the
default), or over Redis when given a URL; ``starmesh engine <name>`` builds a single engine the
same way in a process of its own. Given a database URL, the engines that keep state
(:data:`LEDGER_ENGINES`) get a ledger: one storage, one writer, for the whole process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Depends, FastAPI

from starmesh.client.factory import create_messagebus_client, describe_buses
from starmesh.core.clock import EngineClock, LiveClock, SimulatedClock
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.engines.base import Engine, EngineContext
from starmesh.engines.metering import RouteMeter
from starmesh.engines.websocket import WebSocketEngine
from starmesh.marketdata.factory import create_marketdata_client, create_marketdata_hub
from starmesh.marketdata.http import serve
from starmesh.marketdata.hub import MarketDataHub
from starmesh.marketdata.source import Source
from starmesh.marketdata.sources.replay import ReplaySource
from starmesh.marketdata.sources.simulated import SimulatedSource
from starmesh.platform.config import PlatformConfig
from starmesh.platform.registry import build_engine
from starmesh.platform.scenario import FlashCrash
from starmesh.storage import EngineLedger, Storage, redact

__all__ = ["HISTORY_READERS", "LEDGER_ENGINES", "Platform", "build_context", "market_source"]


_DRAIN_QUIET_S = 0.2
_DRAIN_LIMIT_S = 5.0

LEDGER_ENGINES: tuple[EngineType, ...] = (
    EngineType.RISK,
    EngineType.PORTFOLIO,
    EngineType.STRATEGY,
)
"""The engines whose state survives a restart (the others rebuild theirs from the market)."""

HISTORY_READERS: tuple[EngineType, ...] = (EngineType.WEBSOCKET,)
"""The engines that read the ledger without writing to it (the dashboard shows its past)."""


def build_context(
    kind: EngineType,
    config: PlatformConfig,
    *,
    clock: EngineClock,
    url: str | None = None,
    marketdata_url: str | None = None,
    settings: Settings | None = None,
    meter: RouteMeter | None = None,
    instance: str | None = None,
    storage: Storage | None = None,
) -> EngineContext:
    """The clients and clock of one engine, on the buses the URLs name (none: embedded), and
    its ledger when there is a storage and the engine keeps state."""
    bus = create_messagebus_client(
        kind, url=url, marketdata_url=marketdata_url, instance=instance, settings=settings
    )
    return EngineContext(
        bus=bus,
        marketdata=create_marketdata_client(kind, bus=bus, settings=settings),
        clock=clock,
        symbols=config.symbols,
        heartbeat_s=config.heartbeat_s,
        meter=meter,
        account=config.account,
        ledger=_ledger(kind, config, storage),
    )


def _ledger(
    kind: EngineType, config: PlatformConfig, storage: Storage | None
) -> EngineLedger | None:
    if storage is None or kind not in LEDGER_ENGINES + HISTORY_READERS:
        return None
    return storage.ledger(kind.value, config.account)


def market_source(config: PlatformConfig, clock: EngineClock) -> Source:
    """The market the platform trades: the simulated one, or the replay of real history."""
    if config.source == "replay":
        # On a simulated clock (a backtest) the clock runs in history's own time.
        following = isinstance(clock, SimulatedClock)
        return ReplaySource(clock=clock, speed=config.replay_speed, follow_clock=following)
    return SimulatedSource(
        seed=config.seed,
        clock=clock,
        stream_interval_s=len(config.symbols) / config.quotes_per_second,
        speed=config.market_speed,
    )


class Platform:
    """The hub and the engines of ``config``, started and stopped together."""

    def __init__(
        self,
        config: PlatformConfig | None = None,
        *,
        url: str | None = None,
        marketdata_url: str | None = None,
        settings: Settings | None = None,
        clock: EngineClock | None = None,
        dashboard: tuple[str, int] | None = None,
        database_url: str | None = None,
        storage: Storage | None = None,
    ) -> None:
        """``dashboard``: (host, port) to serve the WebSocket engine's dashboard on (0: any
        free port), when the config runs that engine. ``database_url``: the ledger (see
        ``starmesh.storage``); None keeps none. ``storage``: a ledger already open, which
        the caller closes (the platform only flushes it at stop)."""
        self.config = config = config or PlatformConfig()
        self.settings = settings or Settings()
        self.url = url if url is not None else self.settings.bus_address
        self.marketdata_url = marketdata_url
        self.clock = clock or LiveClock()
        self.meter = RouteMeter()
        self.source = market_source(config, self.clock)
        self.hub: MarketDataHub | None = None
        self.database_url = database_url
        self.storage: Storage | None = storage
        self._owns_storage = storage is None
        self.engines: dict[EngineType, Engine] = {}
        self.started_at = 0.0
        self.stopped_at: float | None = None
        self.states_at_stop: dict[str, str] = {}
        self.scenario: FlashCrash | None = None
        self._dashboard = dashboard
        self.dashboard_url: str | None = None
        self._dashboard_server: Any = None
        self._dashboard_task: asyncio.Task[None] | None = None

    @property
    def simulated(self) -> bool:
        """On a simulated clock: time moves with the data (see ``starmesh.platform.simulation``)."""
        return isinstance(self.clock, SimulatedClock)

    async def settle(self) -> None:
        """Wait until every message sent so far has been handled (the embedded bus only).

        With a ledger, also let the writer catch up once its queue is half full: a simulated
        run is faster than a database, and a full queue would stop Portfolio's orders at a
        point that depends on the machine, not on the data."""
        if self.hub is not None:
            await self.hub.bus.settle()
        if self.storage is not None:
            await self.storage.keep_up()

    @property
    def embedded(self) -> bool:
        return self.url is None or self.url.startswith("memory://")

    # --- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.storage is None and self.database_url is not None:
            # First: a schema it must refuse stops everything.
            self.storage = await Storage.open(self.database_url, settings=self.settings)
        self.hub = create_marketdata_hub(
            [self.source],
            url=self.url,
            marketdata_url=self.marketdata_url,
            settings=self.settings,
            clock=self.clock,
            # On a simulated clock the simulation feeds the hub; a stream would run on its own.
            streaming=not self.simulated,
        )
        await self.hub.start()
        self.started_at = time.monotonic()
        try:
            for kind in self.config.engines:
                engine = build_engine(kind, self._context(kind), self.config)
                await engine.start()
                self.engines[kind] = engine
            await self._serve_dashboard()
            if self.simulated:
                # The clock moves only with the data: warm-ups finish before it starts.
                for engine in self.engines.values():
                    await engine.ready()
                await self.settle()
        except BaseException:
            await self.stop()
            raise
        if self.config.scenario == "flash-crash":
            self.scenario = FlashCrash(self.config, self.source, self.clock)
            self.scenario.start()

    async def _serve_dashboard(self) -> None:
        gateway = self.engines.get(EngineType.WEBSOCKET)
        if self._dashboard is None or not isinstance(gateway, WebSocketEngine):
            return
        if self.hub is not None:
            gateway.hub_stats = self.hub.stats
        auth = gateway.bus.http_auth
        app = FastAPI(
            title="starmesh dashboard",
            # With STARMESH_HTTP_TOKEN set the dashboard asks for the bearer token too.
            dependencies=[Depends(auth.dependency())] if auth.enabled else [],
        )
        app.include_router(gateway.router())
        host, port = self._dashboard
        self._dashboard_server, self._dashboard_task = await serve(
            app, host, port, name="dashboard"
        )
        bound = next(iter(self._dashboard_server.servers[0].sockets)).getsockname()[1]
        self.dashboard_url = f"http://{host}:{bound}/"

    def _context(self, kind: EngineType) -> EngineContext:
        return build_context(
            kind,
            self.config,
            clock=self.clock,
            url=self.url,
            marketdata_url=self.marketdata_url,
            settings=self.settings,
            meter=self.meter,
            storage=self.storage,
        )

    async def stop(self) -> None:
        """Stop the market data, let the engines finish what was sent, then stop them."""
        if self.stopped_at is not None:
            return
        self.stopped_at = time.monotonic()
        self.states_at_stop = self.engine_states()
        if self.scenario is not None:
            self.scenario.cancel()
        if self._dashboard_server is not None:
            self._dashboard_server.should_exit = True
            if self._dashboard_task is not None:
                await self._dashboard_task
        if self.hub is not None:
            await self.hub.stop()
        engines = list(self.engines.values())
        for engine in engines:
            engine.pause()
        await self._drain()
        for engine in reversed(engines):
            await engine.stop()
        if self.storage is not None:  # last: the engines' final checkpoints go in too
            if self._owns_storage:
                await self.storage.close(self.settings.stop_timeout_s)
            else:
                await self.storage.flush(self.settings.stop_timeout_s)

    async def _drain(self) -> None:
        """Wait until every message already sent has been handled."""
        clients = [engine.bus for engine in self.engines.values() if engine.bus.running]
        if not clients:
            return
        if clients[0].can_settle:
            await clients[0].settle()
            return
        # Over a server the bus cannot say; wait until the engines stop receiving (bounded).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _DRAIN_LIMIT_S
        seen = -1
        while loop.time() < deadline:
            received = sum(client.stats()["received"] for client in clients)
            if received == seen:
                return
            seen = received
            await asyncio.sleep(_DRAIN_QUIET_S)

    # --- what happened ------------------------------------------------------------------------

    @property
    def crash(self) -> dict[str, Any] | None:
        """The flash crash of the scenario, once it happened: symbol, ``at_ns``, price."""
        return None if self.scenario is None else self.scenario.crash

    def engine_states(self) -> dict[str, str]:
        """Each engine's state as its peers see it (``up``, ``degraded``, ``down``...)."""
        return {kind.value: _SHOWN.get(engine.state.value, "down")
                for kind, engine in self.engines.items()}  # fmt: skip

    def quotes_per_second(self) -> float:
        """Quotes the hub distributed per second of the run so far."""
        if self.hub is None or not self.elapsed_s:
            return 0.0
        return self.hub.accounting.distributed_by_type.get("quote", 0) / self.elapsed_s

    @property
    def elapsed_s(self) -> float:
        if not self.started_at:
            return 0.0
        end = self.stopped_at if self.stopped_at is not None else time.monotonic()
        return max(0.0, end - self.started_at)

    def transport(self) -> str:
        """The buses, as a user should see them (no password)."""
        return describe_buses(self.url, self.marketdata_url or self.settings.marketdata_address)

    def ledger(self) -> str:
        """The ledger's database, as a user should see it (no password)."""
        if self.storage is not None:
            return self.storage.database.shown
        return "no ledger" if self.database_url is None else redact(self.database_url)


_SHOWN = {
    "starting": "starting",
    "running": "up",
    "degraded": "degraded",
    "stopping": "down",
    "stopped": "down",
    "faulted": "down",
}
