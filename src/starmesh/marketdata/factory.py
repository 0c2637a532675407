"""``create_marketdata_hub`` and ``create_marketdata_client``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from starmesh.client.factory import create_messagebus_client, parse_engine
from starmesh.client.messagebus import MessageBusClient
from starmesh.core.clock import Clock, MonotonicClock
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.marketdata.client import MarketDataClient
from starmesh.marketdata.hub import MarketDataHub
from starmesh.marketdata.source import Source
from starmesh.marketdata.sources import build_source

__all__ = ["create_marketdata_client", "create_marketdata_hub"]


def create_marketdata_hub(
    sources: Sequence[str | Source] = ("simulated",),
    url: str | None = None,
    port: int = 8800,
    serve_http: bool = False,
    *,
    marketdata_url: str | None = None,
    host: str = "127.0.0.1",
    instance: str | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    streaming: bool = True,
    lease: bool | None = None,
) -> MarketDataHub:
    """The hub, an async context manager. ``sources`` are names (see ``starmesh sources``) or
    :class:`Source` objects, in order of preference. With ``serve_http`` it also serves
    ``http://host:port/v1/marketdata``, ``/health``, ``/v1/stats`` and ``/metrics``.
    Without ``streaming`` the hub starts no stream of its own: whoever drives it (a
    simulation) pushes the values with :meth:`MarketDataHub.ingest`. ``lease`` (default
    ``STARMESH_HUB_LEASE``, on): over Redis, serve only while holding the hub lease, so that
    a second hub waits on standby and takes over (README, "The standby hub").
    """
    settings = settings or Settings()
    clock = clock or MonotonicClock()
    built = [s if not isinstance(s, str) else build_source(s, settings, clock) for s in sources]
    bus = create_messagebus_client(
        EngineType.MARKETDATA,
        port,
        url=url,
        marketdata_url=marketdata_url,
        instance=instance,
        settings=settings,
    )
    return MarketDataHub(
        built,
        bus=bus,
        settings=settings,
        clock=clock,
        sleep=sleep or asyncio.sleep,
        serve_http=serve_http,
        host=host,
        port=port,
        streaming=streaming,
        lease=settings.hub_lease if lease is None else lease,
    )


def create_marketdata_client(
    engine: EngineType | str,
    port: int | None = None,
    *,
    url: str | None = None,
    marketdata_url: str | None = None,
    hub_http_url: str | None = None,
    bus: MessageBusClient | None = None,
    instance: str | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> MarketDataClient:
    """The market-data client of one engine instance.

    Pass the engine's ``bus`` client to share it; otherwise the client makes its own bus
    client (same URL rules as :func:`create_messagebus_client`).
    """
    settings = settings or Settings()
    owns_bus = bus is None
    if bus is None:
        bus = create_messagebus_client(
            parse_engine(engine),
            port,
            url=url,
            marketdata_url=marketdata_url,
            instance=instance,
            settings=settings,
        )
    return MarketDataClient(
        bus,
        owns_bus=owns_bus,
        settings=settings,
        hub_http_url=hub_http_url or settings.hub_http_url,
        clock=clock,
    )
