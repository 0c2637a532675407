"""The hub over HTTP (FastAPI): the same data as the bus, for the failover path and for tools.

    GET /v1/marketdata?symbols=AAPL,MSFT&types=quote,level2[&source=...][&<param>=...]
    GET /v1/stats      GET /health      GET /metrics

``/v1/marketdata`` answers with the hub's reply as JSON (snapshots and failures, the shape
the bus carries). Status 200 when at least one value was served; otherwise the status of the
kind of the first failure (400 bad request, 404 unknown symbol, 429 throttled, 503 source
down or timed out, 502 other). A standby hub (another holds the lease) answers 503 with the
failure code ``standby`` and writes nothing; its ``/health`` says ``"status": "standby"``
with a 200, since it is working as meant.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import Depends, FastAPI, Request
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
    "standby": 503,
}
_RESERVED = {"symbols", "types", "source", "engine", "timeout"}
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


def _timeout(request: Request) -> float | None:
    """``timeout``: seconds the caller waits (the hub cuts upstream work past it)."""
    raw = request.query_params.get("timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise InvalidRequestError(f"timeout must be a positive number of seconds, got {raw!r}")
    return value


def build_app(hub: MarketDataHub) -> FastAPI:
    """The hub's app. With ``STARMESH_HTTP_TOKEN`` (or ``_TOKENS``) set, every route answers
    401 without a valid bearer token, and runs nothing."""
    auth = hub.bus.http_auth
    app = FastAPI(
        title="starmesh MarketData Hub",
        version=__version__,
        dependencies=[Depends(auth.dependency())] if auth.enabled else [],
    )

    @app.get("/v1/marketdata")
    async def marketdata(request: Request) -> Response:
        try:
            try:
                query, timeout = _query(request), _timeout(request)
            except InvalidRequestError:
                hub.accounting.invalid_requests += 1
                raise
            identity = getattr(request.state, "identity", None)
            # A per-engine token says who asks; the query parameter is only a claim.
            engine = identity.name if identity is not None and identity.engine else None
            engine = engine or request.query_params.get("engine", "http")
            reply = await hub.get(query, engine=engine, timeout=timeout)
        except MarketDataError as exc:
            failure = MarketDataFailure("", DataType.QUOTE, exc.code, str(exc))
            reply = MarketDataReply(snapshots=[], failures=[failure])
        return _reply(reply)

    @app.get("/v1/stats")
    async def stats() -> Response:
        return Response(_json.encode(hub.stats()), media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        report = await hub.health_report()
        status = 503 if report["status"] == "down" else 200
        return Response(_json.encode(report), status_code=status, media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(render_metrics(hub), media_type="text/plain; version=0.0.4")

    # The hub is an engine too: messages for it arrive here while Redis is down.
    app.include_router(hub.bus.http_router())
    return app


async def serve(
    app: FastAPI, host: str, port: int, *, name: str = "hub-http"
) -> tuple[Any, asyncio.Task[None]]:
    """Run ``app`` on uvicorn in this event loop; returns once it listens (or raises why not).
    Set the server's ``should_exit`` and await the task to stop it.
    """
    import uvicorn

    # No per-message deflate on WebSockets: compressing every dashboard frame costs the event
    # loop the engines share far more than the bytes it saves on a LAN (measured with
    # `starmesh bench websocket`).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                            ws_per_message_deflate=False)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name=name)
    while not server.started:
        if task.done():
            task.result()  # raises why uvicorn could not start
            raise MessageBusError(f"{name}: the HTTP server did not start on port {port}")
        await asyncio.sleep(0.01)
    return server, task
