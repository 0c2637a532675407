"""An engine process's HTTP face, dashboard included, wants a bearer token once tokens are
configured: without one every route answers 401 and nothing is processed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from starmesh import EngineType, Settings
from starmesh.bus.http import token_digest
from starmesh.core.clock import LiveClock
from starmesh.core.codec import MessageCodec
from starmesh.engines.metering import RouteMeter
from starmesh.engines.websocket import WebSocketEngine
from starmesh.platform.composition import build_context
from starmesh.platform.config import PlatformConfig
from starmesh.platform.http import build_engine_app
from starmesh.platform.registry import build_engine
from tests.core.test_codec import envelope

TOKENS = {"websocket": "ui-token", "operator": "operator-token"}
ROUTES = [("GET", "/health"), ("GET", "/metrics"), ("GET", "/v1/routes"),
          ("POST", "/v1/messages"), ("GET", "/"), ("GET", "/v1/platform"),
          ("GET", "/v1/history"), ("GET", "/static/dashboard.js")]  # fmt: skip


@pytest.fixture
async def engine_http(key_prefix: str) -> AsyncIterator[tuple[httpx.AsyncClient, WebSocketEngine]]:
    settings = Settings(
        key_prefix=key_prefix,
        http_token=SecretStr(TOKENS["websocket"]),
        http_tokens={name: token_digest(token) for name, token in TOKENS.items()},
    )
    config = PlatformConfig(symbols=("AAPL",), engines=(EngineType.WEBSOCKET,))
    meter = RouteMeter()
    context = build_context(EngineType.WEBSOCKET, config, clock=LiveClock(), settings=settings,
                            meter=meter)  # fmt: skip
    engine = build_engine(EngineType.WEBSOCKET, context, config)
    assert isinstance(engine, WebSocketEngine)
    # As `starmesh engine websocket` mounts it: the engine's routes, ingress, the dashboard.
    app = build_engine_app(engine, meter)
    app.include_router(context.bus.http_router())
    app.include_router(engine.router())
    await engine.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui")
    try:
        yield client, engine
    finally:
        await client.aclose()
        await engine.stop()


async def test_every_route_of_an_engine_and_its_dashboard_wants_a_token(
    engine_http: tuple[httpx.AsyncClient, WebSocketEngine],
) -> None:
    client, engine = engine_http
    body = MessageCodec().encode(envelope({"n": 1}))
    for method, path in ROUTES:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            answer = await client.request(
                method, path, headers={**headers, "Content-Type": "application/msgpack"},
                content=body if method == "POST" else None,
            )  # fmt: skip
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    # Nothing was processed: the alert would have reached the browsers' sessions.
    assert engine.bus._http_endpoint is not None
    assert engine.bus._http_endpoint.counts["messages"] == 0
    operator = {"Authorization": f"Bearer {TOKENS['operator']}"}
    for path in ("/health", "/v1/platform", "/v1/history", "/"):
        answer = await client.get(path, headers=operator)
        assert answer.status_code == 200, (path, answer.text)
    assert (await client.get("/v1/history", headers=operator)).json()["ledger"] is None
