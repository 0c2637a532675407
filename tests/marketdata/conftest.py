"""A hub and its engine clients on the embedded bus or on a private Redis, stopped at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from starmesh import (
    EngineType,
    MarketDataClient,
    MarketDataHub,
    Settings,
    create_marketdata_client,
    create_marketdata_hub,
)
from starmesh.marketdata.source import Source
from starmesh.testing import RedisServer


class Platform:
    def __init__(self, url: str | None, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.hubs: list[MarketDataHub] = []
        self.clients: list[MarketDataClient] = []

    async def hub(
        self, sources: Sequence[str | Source] = ("simulated",), **options: Any
    ) -> MarketDataHub:
        options.setdefault("port", 18_800)
        hub = create_marketdata_hub(sources, url=self.url, settings=self.settings, **options)
        await hub.start()
        self.hubs.append(hub)
        return hub

    async def client(
        self, engine: EngineType = EngineType.STRATEGY, **options: Any
    ) -> MarketDataClient:
        options.setdefault("hub_http_url", "http://127.0.0.1:9")  # nothing listens there
        options.setdefault("url", self.url)
        client = create_marketdata_client(engine, settings=self.settings, **options)
        await client.start()
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            await client.stop()
        for hub in self.hubs:
            await hub.stop()


@pytest.fixture(params=["memory", "redis"])
async def platform(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Platform]:
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    settings = Settings(key_prefix=key_prefix, request_timeout=5.0, claim_idle_ms=2_000)
    platform = Platform(url, settings)
    try:
        yield platform
    finally:
        await platform.aclose()


@pytest.fixture
async def embedded(key_prefix: str) -> AsyncIterator[Platform]:
    platform = Platform(None, Settings(key_prefix=key_prefix, request_timeout=5.0))
    try:
        yield platform
    finally:
        await platform.aclose()


__all__ = ["Platform", "RedisServer"]
