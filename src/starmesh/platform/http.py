"""An engine's own HTTP face: ``/health``, ``/metrics`` (Prometheus) and ``/v1/routes``.

GET /health     the engine's state, counters and what it knows of its peers (503 unless
                running or degraded)
GET /metrics    the same counters, and each route's latency quantiles, for Prometheus
GET /v1/routes  the routes this process has received on, with p50/p99 (and the buckets of
                each latency histogram: a window's percentiles are their difference)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from fastapi import Depends, FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from starmesh.__about__ import __version__
from starmesh.engines.base import Engine
from starmesh.engines.metering import RouteMeter

__all__ = ["build_engine_app", "engine_health"]

_json = msgspec.json.Encoder()


async def engine_health(engine: Engine) -> dict[str, Any]:
    """The engine's heartbeat, its peers, and its client's paths (bus, HTTP, outbox)."""
    now = engine.clock.now_ns()
    return {
        "engine": engine.name,
        "status": engine.health(),
        "peers": engine.peers.snapshot(now),
        "bus": await engine.bus.health_report(),
    }


class _EngineCollector(Collector):
    def __init__(self, engine: Engine, meter: RouteMeter) -> None:
        self._engine = engine
        self._meter = meter

    def collect(self) -> Iterator[Metric]:
        health = self._engine.health()
        labels = ["engine"]
        name = [self._engine.name]
        for metric, value, text in (
            ("starmesh_engine_messages_in", health.messages_in, "messages handed to handlers"),
            ("starmesh_engine_messages_out", health.messages_out, "messages published"),
            ("starmesh_engine_handler_errors", health.handler_errors, "handler failures"),
        ):
            family = CounterMetricFamily(metric, text, labels=labels)
            family.add_metric(name, value)
            yield family
        up = GaugeMetricFamily(
            "starmesh_engine_up", "1 running, 0.5 degraded, 0 otherwise", labels=labels
        )
        up.add_metric(name, {"running": 1.0, "degraded": 0.5}.get(health.state.value, 0.0))
        yield up
        messages = CounterMetricFamily(
            "starmesh_route_messages", "deliveries per route", labels=["source", "target", "topic"]
        )
        latency = GaugeMetricFamily(
            "starmesh_route_latency_seconds",
            "publish-to-handler latency per route",
            labels=["source", "target", "topic", "quantile"],
        )
        for route in self._meter.routes():
            key = [route["from"], route["to"], route["topic"]]
            messages.add_metric(key, route["messages"])
            latency.add_metric([*key, "0.5"], route["p50_us"] / 1e6)
            latency.add_metric([*key, "0.99"], route["p99_us"] / 1e6)
        yield messages
        yield latency


def build_engine_app(engine: Engine, meter: RouteMeter) -> FastAPI:
    """With ``STARMESH_HTTP_TOKEN`` (or ``_TOKENS``) set, every route answers 401 without a
    valid bearer token."""
    auth = engine.bus.http_auth
    app = FastAPI(
        title=f"starmesh {engine.name} engine",
        version=__version__,
        dependencies=[Depends(auth.dependency())] if auth.enabled else [],
    )

    @app.get("/health")
    async def health() -> Response:
        report = await engine_health(engine)
        status = 200 if engine.state.up else 503
        return Response(_json.encode(report), status_code=status, media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_EngineCollector(engine, meter))
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @app.get("/v1/routes")
    async def routes() -> Response:
        return Response(_json.encode(meter.routes(buckets=True)), media_type="application/json")

    return app
