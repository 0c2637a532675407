"""The hub's figures in Prometheus form, read from ``hub.stats()`` at each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from starmesh.marketdata.hub import MarketDataHub

__all__ = ["HubCollector", "render_metrics"]

_BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}


class HubCollector(Collector):
    """Counters live in the hub as plain ints (nothing on the request path); this turns them
    into metric families when Prometheus asks.
    """

    def __init__(self, hub: MarketDataHub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        stats = self._hub.stats()
        requests = CounterMetricFamily(
            "starmesh_hub_requests", "(symbol, data type) pairs asked of the hub",
            labels=["engine", "data_type"],
        )  # fmt: skip
        for engine, by_type in stats["requests_by_engine"].items():
            for data_type, count in by_type.items():
                requests.add_metric([engine, data_type], count)
        yield requests
        for name, key, text in (
            ("starmesh_hub_cache_hits", "cache_hits", "answers from the hub cache"),
            ("starmesh_hub_cache_misses", "cache_misses", "lookups that missed the cache"),
            ("starmesh_hub_coalesced", "coalesced", "requests that shared another's upstream call"),
            ("starmesh_hub_stale_served", "stale_served", "stale values served on source failure"),
            ("starmesh_hub_distributed", "distributed", "updates written to the MarketData Bus"),
        ):
            yield CounterMetricFamily(name, text, value=stats[key])
        yield GaugeMetricFamily("starmesh_hub_hit_rate", "cache hit rate", value=stats["hit_rate"])
        yield GaugeMetricFamily(
            "starmesh_hub_consolidation_ratio",
            "share of requests answered without an upstream call of their own",
            value=stats["consolidation_ratio"],
        )
        yield GaugeMetricFamily(
            "starmesh_hub_cache_entries", "values in the hub cache", value=stats["cache_entries"]
        )
        upstream = CounterMetricFamily(
            "starmesh_hub_upstream_calls", "calls to external sources", labels=["source"]
        )
        errors = CounterMetricFamily(
            "starmesh_hub_source_errors", "source failures", labels=["source"]
        )
        waits = CounterMetricFamily(
            "starmesh_hub_rate_limit_waits",
            "calls delayed by a source's rate limit",
            labels=["source"],
        )
        breaker = GaugeMetricFamily(
            "starmesh_hub_breaker_state", "0 closed, 1 half-open, 2 open", labels=["source"]
        )
        for name, source in stats["sources"].items():
            upstream.add_metric([name], source["upstream_calls"])
            errors.add_metric([name], source["errors"])
            waits.add_metric([name], source["rate_limit_waits"])
            breaker.add_metric([name], _BREAKER_VALUE[source["breaker"]])
        yield from (upstream, errors, waits, breaker)
        latency = GaugeMetricFamily(
            "starmesh_hub_distribution_latency_seconds",
            "time to write an update to the MarketData Bus",
            labels=["quantile"],
        )
        for quantile, key in (("0.5", "p50_us"), ("0.99", "p99_us")):
            if key in stats["distribution_latency"]:
                latency.add_metric([quantile], stats["distribution_latency"][key] / 1e6)
        yield latency


def render_metrics(hub: MarketDataHub) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub))
    return generate_latest(registry)
