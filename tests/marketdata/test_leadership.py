"""A hub taking the lease resumes its numbering as a standby (a value numbered then would
carry the old epoch and a number already used), and is active from the moment it starts
serving: serving answers the requests waiting in the backlog and starts streams, and each may
run before it is done (a refusal there was a ``HubStandbyError`` to an engine that asked in
time)."""

from __future__ import annotations

import pytest

from starmesh import EngineType, Settings, create_messagebus_client
from starmesh.client.lease import hub_lease
from starmesh.marketdata.leadership import HubLeadership
from starmesh.testing import RedisServer


async def test_the_hub_resumes_on_standby_serves_as_active_and_gives_up_if_serving_fails(
    redis_server: RedisServer, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix)
    client = create_messagebus_client(
        EngineType.MARKETDATA, url=redis_server.url, settings=settings
    )
    async with client:
        lease = hub_lease(client, ttl_s=5.0)
        assert lease is not None
        seen: list[tuple[str, bool]] = []
        deactivated: list[str] = []

        async def resume(token: int) -> None:
            seen.append(("resuming", leadership.active))

        async def serve() -> None:
            seen.append(("serving", leadership.active))

        async def deactivate() -> None:
            deactivated.append("once")

        leadership = HubLeadership(
            lease, resume=resume, serve=serve, deactivate=deactivate, http_url=lambda: None,
            ttl_s=5.0,
        )  # fmt: skip
        assert await leadership.campaign()
        assert seen == [("resuming", False), ("serving", True)]
        assert leadership.active
        await leadership.stop()  # releases: the next campaign gets the lease again

        async def serving_fails() -> None:
            raise RuntimeError("no request topics")

        failing = HubLeadership(
            lease, resume=resume, serve=serving_fails, deactivate=deactivate,
            http_url=lambda: None, ttl_s=5.0,
        )  # fmt: skip
        with pytest.raises(RuntimeError, match="no request topics"):
            await failing.campaign()
        assert failing.state == "standby"
        assert deactivated == ["once"]  # what it served before failing is ended
        assert await lease.acquire() is not None  # it let the lease go
