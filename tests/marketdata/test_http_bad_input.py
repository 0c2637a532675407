"""The hub's HTTP endpoints under bad input: a 4xx (or the failure's own status) with a
message, counted; never a 500, never an unbounded metric label."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starmesh import Settings, create_marketdata_hub
from starmesh.marketdata.http import build_app
from tests.marketdata.doubles import CountingSource

ALLOWED = {200, 400, 404, 429, 502, 503}
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
queries = st.dictionaries(
    st.sampled_from(["symbols", "types", "source", "engine", "timeout", "lookback", "x"]),
    text | st.just("quote,level2") | st.just("AAPL,,MSFT"),
)


async def ask(params_list: list[dict[str, str]]) -> list[httpx.Response]:
    hub = create_marketdata_hub([CountingSource()], settings=Settings(key_prefix="badinput"))
    async with hub:
        transport = httpx.ASGITransport(app=build_app(hub))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            return [await http.get("/v1/marketdata", params=p) for p in params_list]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=st.lists(queries, min_size=1, max_size=5))
def test_any_query_gets_a_status_with_a_reason_never_a_500(params: list[dict[str, str]]) -> None:
    for response in asyncio.run(ask(params)):
        assert response.status_code in ALLOWED, response.text
        body = response.json()
        assert body["snapshots"] or body["failures"][0]["message"]


async def get_raw(app: Any, query: bytes) -> tuple[int, bytes]:
    """GET /v1/marketdata with a raw query string, straight into the ASGI app (httpx refuses
    URLs over 64 KiB; a real server refuses them earlier still)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/v1/marketdata", "raw_path": b"/v1/marketdata",
        "query_string": query, "headers": [], "server": ("hub", 80), "client": ("t", 1),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_ten_thousand_symbols_and_a_5_kb_engine_label(key_prefix: str) -> None:
    hub = create_marketdata_hub([CountingSource()], settings=Settings(key_prefix=key_prefix))
    async with hub:
        app = build_app(hub)
        symbols = ",".join(f"S{n}" for n in range(10_000)).encode()
        status, body = await get_raw(app, b"symbols=" + symbols)
        assert status == 400
        assert b"10,000 symbols asked for; the limit is 1,000" in body
        label = b"e" * 5_000
        status, _ = await get_raw(app, b"symbols=AAPL&engine=" + label)
        assert status == 200
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            metrics = (await http.get("/metrics")).text
            stats = (await http.get("/v1/stats")).json()
    assert label.decode() not in metrics
    assert 'starmesh_hub_requests_total{data_type="quote",engine="other"} 1.0' in metrics
    assert stats["invalid_requests"] == 1
