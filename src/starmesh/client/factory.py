"""``create_messagebus_client``: the one call an engine makes to join the platform."""

from __future__ import annotations

import itertools
import os
import re
import socket

from starmesh.bus.embedded import embedded_buses
from starmesh.bus.redis import RedisTransport, redact_url
from starmesh.bus.transport import validate_instance
from starmesh.client.messagebus import BusConnection, Connector, MessageBusClient
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.core.errors import ConfigurationError

__all__ = [
    "create_messagebus_client",
    "default_instance_name",
    "describe_buses",
    "parse_engine",
]

_EMBEDDED_SCHEMES = ("memory://",)
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
_instance_counter = itertools.count(1)


def parse_engine(engine: EngineType | str) -> EngineType:
    try:
        return EngineType(engine)
    except ValueError:
        names = ", ".join(e.value for e in EngineType)
        raise ConfigurationError(f"unknown engine {engine!r}; use one of {names}") from None


def default_instance_name() -> str:
    """``<host>-<pid>-<n>``: unique per client on this host, stable for the process's life."""
    host = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}-{next(_instance_counter)}"


def create_messagebus_client(
    engine: EngineType | str,
    port: int | None = None,
    *,
    url: str | None = None,
    marketdata_url: str | None = None,
    instance: str | None = None,
    settings: Settings | None = None,
) -> MessageBusClient:
    """A client for one instance of ``engine``.

    With no ``url`` (and no ``STARMESH_BUS_URL``) the client joins the embedded in-process bus
    shared by every client of this event loop. ``url="redis://host:6381"`` uses Redis Streams
    for the Engine Logic Bus and, unless ``marketdata_url`` names another server, for the
    MarketData Bus too; ``redis+cluster://host:7000`` a Redis Cluster discovered from that
    node. ``port`` is the engine's HTTP port (default: the engine's own).
    """
    engine_type = parse_engine(engine)
    settings = settings or Settings()
    if port is None:
        port = engine_type.default_port
    if not 0 <= port < 65536:  # 0: the engine's HTTP face listens on any free port
        raise ConfigurationError(f"port {port} is not a TCP port")
    instance = validate_instance(instance or default_instance_name())
    logic_url = url if url is not None else settings.bus_address
    md_url = marketdata_url if marketdata_url is not None else settings.marketdata_address
    return MessageBusClient(
        engine_type,
        port,
        instance=instance,
        settings=settings,
        connect=_connector(logic_url, md_url or logic_url, settings),
    )


def describe_buses(url: str | None, marketdata_url: str | None = None) -> str:
    """Which buses these URLs give, for people to read: never a password."""
    if url is None or url.startswith(_EMBEDDED_SCHEMES):
        return "embedded bus (in-process)"
    shown = f"Redis {redact_url(url)}"
    if marketdata_url and marketdata_url != url:
        shown += f" (market data: {redact_url(marketdata_url)})"
    return shown


def _connector(logic_url: str | None, md_url: str | None, settings: Settings) -> Connector:
    embedded = [u is None or u.startswith(_EMBEDDED_SCHEMES) for u in (logic_url, md_url)]
    if all(embedded):

        async def connect_embedded() -> BusConnection:
            buses = await embedded_buses(settings)
            return BusConnection(buses.logic, buses.marketdata, owned=False)

        return connect_embedded
    if any(embedded):
        raise ConfigurationError(
            "one bus is embedded and the other is not; the embedded bus only reaches engines "
            "in this process, so give both a server URL (or neither)"
        )
    assert logic_url is not None
    assert md_url is not None
    for url in (logic_url, md_url):
        if not url.startswith(_REDIS_SCHEMES):
            raise ConfigurationError(
                f"unsupported bus URL {redact_url(url)!r}: use redis://, rediss:// or unix:// "
                "(a Redis Cluster: redis+cluster:// or rediss+cluster://), or no URL for the "
                "embedded bus"
            )

    async def connect_redis() -> BusConnection:
        logic = RedisTransport(
            logic_url, name=f"redis:logic:{redact_url(logic_url)}", settings=settings
        )
        if md_url == logic_url:
            return BusConnection(logic, logic, owned=True)
        marketdata = RedisTransport(
            md_url, name=f"redis:marketdata:{redact_url(md_url)}", settings=settings
        )
        return BusConnection(logic, marketdata, owned=True)

    return connect_redis
