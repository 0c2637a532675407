"""One engine in a process of its own: ``starmesh engine <name> --url redis://...``.

The engine is built exactly as :class:`~starmesh.platform.composition.Platform` builds it,
on the Redis buses, and serves its HTTP face on its port. ``marketdata`` is the MarketData
Hub fed by the platform's market (the simulated source, or the replay), under the hub lease
(``STARMESH_HUB_LEASE``, on by default): run it twice and the second waits on standby. An
engine that keeps state (Risk, Portfolio, Strategy) opens the ledger at ``database_url`` and
resumes from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

import msgspec

from starmesh.core.clock import LiveClock
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.engines.metering import RouteMeter
from starmesh.engines.websocket import WebSocketEngine
from starmesh.marketdata.factory import create_marketdata_hub
from starmesh.marketdata.http import serve
from starmesh.platform.composition import (
    HISTORY_READERS,
    LEDGER_ENGINES,
    build_context,
    market_source,
)
from starmesh.platform.config import PlatformConfig
from starmesh.platform.http import build_engine_app
from starmesh.platform.process import settle_after_startup
from starmesh.platform.registry import build_engine
from starmesh.platform.scenario import FlashCrash
from starmesh.storage import Storage

__all__ = ["run_engine_process"]


async def run_engine_process(
    kind: EngineType,
    config: PlatformConfig,
    *,
    url: str | None,
    marketdata_url: str | None = None,
    settings: Settings | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    instance: str | None = None,
    announce: Callable[[str], None] = print,
    database_url: str | None = None,
) -> None:
    """Run until SIGINT or SIGTERM; ``announce`` is told when the engine is up and where."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    port = kind.default_port if port is None else port
    clock = LiveClock()
    if kind is EngineType.MARKETDATA:
        source = market_source(config, clock)
        hub = create_marketdata_hub(
            [source], url=url, marketdata_url=marketdata_url, port=port, host=host,
            serve_http=True, settings=settings, clock=clock, instance=instance,
        )  # fmt: skip
        # The market's owner plays the scenario: here, the hub's process.
        scenario = FlashCrash(config, source, clock) if config.scenario == "flash-crash" else None
        async with hub:
            if hub.http_port is not None:
                hub.bus.listening_on(hub.http_port)
            settle_after_startup()
            role = " (standby: another hub holds the lease)" if hub.standby else ""
            announce(f"ready: marketdata on http://{host}:{hub.http_port}{role}")
            if scenario is not None:
                scenario.start()
            try:
                await stop.wait()
            finally:
                if scenario is not None:
                    scenario.cancel()
        return
    if kind is EngineType.WEBSOCKET and config.websocket.hub_http_url is None:
        # The dashboard reads the hub's figures over HTTP when the hub is another process.
        hub_url = (settings or Settings()).hub_http_url
        websocket = msgspec.structs.replace(config.websocket, hub_http_url=hub_url)
        config = msgspec.structs.replace(config, websocket=websocket)
    storage = None
    if database_url is not None and kind in LEDGER_ENGINES + HISTORY_READERS:
        storage = await Storage.open(database_url, settings=settings)
    meter = RouteMeter()
    context = build_context(
        kind, config, clock=clock, url=url, marketdata_url=marketdata_url,
        settings=settings, meter=meter, instance=instance, storage=storage,
    )  # fmt: skip
    engine = build_engine(kind, context, config)
    app = build_engine_app(engine, meter)
    # POST /v1/messages: what publishers deliver here over HTTP while Redis is down.
    app.include_router(context.bus.http_router())
    if isinstance(engine, WebSocketEngine):
        app.include_router(engine.router())  # the dashboard, on the engine's own port
    server, serving = await serve(app, host, port, name=f"{kind.value}-http")
    context.bus.listening_on(_bound_port(server))
    try:
        await engine.start()
        settle_after_startup()
        ledger = f" (ledger {storage.database.shown})" if storage is not None else ""
        announce(f"ready: {kind.value} on http://{host}:{_bound_port(server)}{ledger}")
        await stop.wait()
    finally:
        await engine.stop()
        server.should_exit = True
        await serving
        if storage is not None:  # after the engine's last checkpoint
            await storage.close((settings or Settings()).stop_timeout_s)


def _bound_port(server: Any) -> int:
    """The port uvicorn listens on (the one bound, when port 0 was asked for)."""
    for listener in server.servers:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("the HTTP server listens on no socket")
