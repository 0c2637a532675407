"""The hub over HTTP (FastAPI): the same data as the bus, for the failover path and for tools.

    GET /v1/marketdata?symbols=AAPL,MSFT&types=quote,level2[&source=...][&<param>=...]
    GET /v1/stats      GET /health      GET /metrics

``/v1/marketdata`` answers with the hub's reply as JSON (snapshots and failures, the shape
the bus carries). Status 200 when at least one value was served; otherwise the status of the
kind of the first failure (400 bad request, 404 unknown symbol, 429 throttled, 503 source
down or timed out, 502 other).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response

from starmesh.__about__ import __version__
from starmesh.core.enums import DataType
from starmesh.core.errors import InvalidRequestError, MarketDataError, MessageBusError
from starmesh.core.payloads import MarketDataFailure, MarketDataQuery, MarketDataReply
from starmesh.marketdata.metrics import render_metrics

if TYPE_CHECKING:
    from starmesh.marketdata.hub import MarketDataHub

__all__ = ["build_app", "serve"]

_STATUS = {
    "invalid_request": 400,
    "unsupported_data_type": 400,
    "not_configured": 400,
    "unknown_symbol": 404,
    "throttled": 429,
    "unavailable": 503,
    "timeout": 503,
}
_RESERVED = {"symbols", "types", "source", "engine"}
_json = msgspec.json.Encoder()


def _reply(reply: MarketDataReply) -> Response:
    status = (
        200 if reply.snapshots or not reply.failures else _STATUS.get(reply.failures[0].code, 502)
    )
    return Response(_json.encode(reply), status_code=status, media_type="application/json")


def _query(request: Request) -> MarketDataQuery:
    args = request.query_params
    symbols = [s.strip() for s in args.get("symbols", "").split(",") if s.strip()]
    names = [t.strip().lower() for t in args.get("types", "quote").split(",") if t.strip()]
    try:
        data_types = [DataType(name) for name in names]
    except ValueError:
        valid = ", ".join(t.value for t in DataType)
        raise InvalidRequestError(f"types must be among {valid}; got {','.join(names)}") from None
    params = {k: v for k, v in args.items() if k not in _RESERVED}
    return MarketDataQuery(
        symbols=symbols, data_types=data_types, source=args.get("source"), params=params
    )


def build_app(hub: MarketDataHub) -> FastAPI:
    app = FastAPI(title="starmesh MarketData Hub", version=__version__)

    @app.get("/v1/marketdata")
    async def marketdata(request: Request) -> Response:
        try:
            query = _query(request)
            reply = await hub.get(query, engine=request.query_params.get("engine", "http"))
        except MarketDataError as exc:
            failure = MarketDataFailure("", DataType.QUOTE, exc.code, str(exc))
            reply = MarketDataReply(snapshots=[], failures=[failure])
        return _reply(reply)

    @app.get("/v1/stats")
    async def stats() -> Response:
        return Response(_json.encode(hub.stats()), media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        report = hub.health()
        status = 503 if report["status"] == "down" else 200
        return Response(_json.encode(report), status_code=status, media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(render_metrics(hub), media_type="text/plain; version=0.0.4")

    return app


async def serve(hub: MarketDataHub, host: str, port: int) -> tuple[Any, asyncio.Task[None]]:
    """Run the app on uvicorn in this event loop; returns once it listens (or raises why not).
    Set the server's ``should_exit`` and await the task to stop it.
    """
    import uvicorn

    config = uvicorn.Config(
        build_app(hub), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="hub-http")
    while not server.started:
        if task.done():
            task.result()  # raises why uvicorn could not start
            raise MessageBusError(f"the hub's HTTP server did not start on port {port}")
        await asyncio.sleep(0.01)
    return server, task
