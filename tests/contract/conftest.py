"""The transport contract: one suite, run on every transport through the public client API.

A ``Mesh`` makes started clients on one bus (the embedded one, or a private Redis server) and
stops them all at the end of the test. Add a transport by adding a parameter here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from starmesh import EngineType, MessageBusClient, Settings, create_messagebus_client


class Mesh:
    def __init__(self, url: str | None, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.clients: list[MessageBusClient] = []

    async def client(self, engine: EngineType, instance: str | None = None) -> MessageBusClient:
        client = create_messagebus_client(
            engine, url=self.url, instance=instance, settings=self.settings
        )
        await client.start()
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in reversed(self.clients):
            await client.stop()


@pytest.fixture(params=["memory", "redis"])
async def mesh(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Mesh]:
    settings = Settings(
        request_timeout=5.0,
        publish_timeout=5.0,
        max_deliveries=3,
        key_prefix=key_prefix,
        claim_idle_ms=2_000,
    )
    url = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
    mesh = Mesh(url, settings)
    try:
        yield mesh
    finally:
        await mesh.aclose()
