"""The hub's HTTP face, through the ASGI app and through a real uvicorn."""

from __future__ import annotations

import socket

import httpx
import msgspec

from starmesh import DataType
from starmesh.core.payloads import MarketDataReply
from starmesh.marketdata.http import build_app
from tests.marketdata.conftest import Platform
from tests.marketdata.doubles import CountingSource

decode = msgspec.json.Decoder(MarketDataReply).decode


async def test_marketdata_endpoint_over_asgi(embedded: Platform) -> None:
    hub = await embedded.hub(["simulated", "replay"])
    transport = httpx.ASGITransport(app=build_app(hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
        ok = await http.get(
            "/v1/marketdata", params={"symbols": "AAPL,MSFT", "types": "quote,level2"}
        )
        assert ok.status_code == 200
        reply = decode(ok.content)
        assert {(s.symbol, s.data_type) for s in reply.snapshots} == {
            ("AAPL", DataType.QUOTE), ("AAPL", DataType.LEVEL2),
            ("MSFT", DataType.QUOTE), ("MSFT", DataType.LEVEL2),
        }  # fmt: skip
        history = await http.get(
            "/v1/marketdata", params={"symbols": "AAPL", "types": "bar", "lookback": "5"}
        )
        assert len(decode(history.content).snapshots[0].data.bars) == 5  # type: ignore[union-attr]
        unknown = await http.get("/v1/marketdata", params={"symbols": "ZZZZ"})
        assert unknown.status_code == 404
        assert decode(unknown.content).failures[0].code == "unknown_symbol"
        bad = await http.get("/v1/marketdata", params={"symbols": "AAPL", "types": "quotes"})
        assert bad.status_code == 400
        assert "types must be among" in decode(bad.content).failures[0].message
        empty = await http.get("/v1/marketdata", params={"symbols": ""})
        assert empty.status_code == 400
        stats = (await http.get("/v1/stats")).json()
        assert stats["requests"] == 6
        assert stats["sources"]["simulated"]["state"] == "configured"
        health = await http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        metrics = (await http.get("/metrics")).text
        assert 'starmesh_hub_requests_total{data_type="quote",engine="http"} 3.0' in metrics
        assert 'starmesh_hub_breaker_state{source="replay"} 0.0' in metrics


async def test_a_throttled_or_failing_source_maps_to_its_status(embedded: Platform) -> None:
    source = CountingSource()
    source.failing = True
    hub = await embedded.hub([source])
    transport = httpx.ASGITransport(app=build_app(hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
        down = await http.get("/v1/marketdata", params={"symbols": "AAPL"})
        assert down.status_code == 503
        assert decode(down.content).failures[0].code == "unavailable"


async def test_a_real_uvicorn_serves_the_same(embedded: Platform) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hub = await embedded.hub([CountingSource()], serve_http=True, port=port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        response = await http.get("/v1/marketdata", params={"symbols": "SPY"})
        assert response.status_code == 200
        assert decode(response.content).snapshots[0].symbol == "SPY"
        assert (await http.get("/health")).json()["status"] == "ok"
    await hub.stop()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await http.get("/health")
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the HTTP server still answers after the hub stopped")
