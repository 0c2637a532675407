"""A hub taking the lease counts as active from the moment its activation starts: activation
serves the requests waiting in the backlog and starts streams, and each may run before it is
done (a refusal there was a ``HubStandbyError`` answered to an engine that asked in time)."""

from __future__ import annotations

import pytest

from starmesh import EngineType, Settings, create_messagebus_client
from starmesh.client.lease import hub_lease
from starmesh.marketdata.leadership import HubLeadership
from starmesh.testing import RedisServer


async def test_the_hub_is_active_while_it_activates_and_standby_again_if_that_fails(
    redis_server: RedisServer, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix)
    client = create_messagebus_client(
        EngineType.MARKETDATA, url=redis_server.url, settings=settings
    )
    async with client:
        lease = hub_lease(client, ttl_s=5.0)
        assert lease is not None
        seen_while_activating: list[bool] = []

        async def activate(token: int) -> None:
            seen_while_activating.append(leadership.active)

        async def deactivate() -> None:
            pass

        leadership = HubLeadership(
            lease, activate=activate, deactivate=deactivate, http_url=lambda: None, ttl_s=5.0
        )
        assert await leadership.campaign()
        assert seen_while_activating == [True]
        assert leadership.active
        await leadership.stop()  # releases: the next campaign gets the lease again

        async def activation_fails(token: int) -> None:
            raise RuntimeError("no snapshot keys")

        failing = HubLeadership(
            lease, activate=activation_fails, deactivate=deactivate, http_url=lambda: None,
            ttl_s=5.0,
        )  # fmt: skip
        with pytest.raises(RuntimeError, match="no snapshot keys"):
            await failing.campaign()
        assert failing.state == "standby"
        assert await lease.acquire() is not None  # it let the lease go
