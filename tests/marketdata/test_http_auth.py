"""Every route of the hub's HTTP face wants a bearer token once tokens are configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from starmesh import Settings, create_marketdata_hub
from starmesh.bus.http import token_digest
from starmesh.core.codec import MessageCodec
from starmesh.marketdata.http import build_app
from tests.core.test_codec import envelope
from tests.marketdata.doubles import CountingSource

TOKENS = {"strategy": "strategy-token", "operator": "operator-token", "marketdata": "hub-token"}
ROUTES = [("GET", "/v1/marketdata?symbols=AAPL"), ("GET", "/v1/stats"), ("GET", "/health"),
          ("GET", "/metrics"), ("POST", "/v1/messages")]  # fmt: skip


@pytest.fixture
async def hub_http(key_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        key_prefix=key_prefix,
        http_token=SecretStr(TOKENS["marketdata"]),
        http_tokens={name: token_digest(token) for name, token in TOKENS.items()},
    )
    hub = create_marketdata_hub([CountingSource()], settings=settings)
    await hub.start()
    transport = httpx.ASGITransport(app=build_app(hub))
    client = httpx.AsyncClient(transport=transport, base_url="http://hub")
    yield client
    await client.aclose()
    await hub.stop()


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


async def test_no_route_answers_without_a_valid_token(hub_http: httpx.AsyncClient) -> None:
    message = MessageCodec().encode(envelope({"n": 1}))
    for method, path in ROUTES:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            answer = await hub_http.request(
                method, path, headers={**headers, "Content-Type": "application/msgpack"},
                content=message if method == "POST" else None,
            )  # fmt: skip
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    stats = await hub_http.get("/v1/stats", headers=bearer("operator"))
    assert stats.json()["requests"] == 0  # nothing ran


async def test_a_token_says_who_asks_whatever_the_query_claims(
    hub_http: httpx.AsyncClient,
) -> None:
    answer = await hub_http.get(
        "/v1/marketdata", params={"symbols": "AAPL", "engine": "risk"}, headers=bearer("strategy")
    )
    assert answer.status_code == 200
    stats = (await hub_http.get("/v1/stats", headers=bearer("operator"))).json()
    assert stats["requests_by_engine"] == {"strategy": {"quote": 1}}
    for method, path in ROUTES[1:4]:  # an operator reads health, stats and metrics
        assert (await hub_http.request(method, path, headers=bearer("operator"))).status_code in (
            200,
            503,
        )
    posted = await hub_http.post(
        "/v1/messages", content=MessageCodec().encode(envelope({"n": 1})),
        headers={**bearer("operator"), "Content-Type": "application/msgpack"},
    )  # fmt: skip
    assert posted.status_code == 403  # but posts no message
