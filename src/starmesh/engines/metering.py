"""Route accounting: every delivery timed from publish to handler, per (from, to, pattern).

The architecture's routes are edges of a graph: strategy -> portfolio on
``strategy.signals.*``, risk -> strategy on ``risk.alert.*``... A :class:`RouteMeter` counts
the messages on each edge and keeps their latency histogram; one meter may be shared by every
engine of a process. Market-data topics are per symbol (``marketdata.quote.AAPL``); they are
counted per data type (``marketdata.quote.*``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from starmesh.core.enums import EngineType
from starmesh.core.latency import LatencyHistogram
from starmesh.core.routing import MARKETDATA_PREFIX
from starmesh.core.topics import is_wildcard

__all__ = ["Route", "RouteMeter"]


class Route(NamedTuple):
    source: str
    """An engine type's name."""
    target: str
    """An engine type's name, or ``*`` for what leaves the platform (the UI gateway's
    browsers)."""
    pattern: str


class RouteMeter:
    def __init__(self) -> None:
        self._routes: dict[Route, LatencyHistogram] = {}
        self._patterns: dict[str, str] = {}

    def record(
        self, source: EngineType | str, target: EngineType | str, pattern: str, latency_ns: int
    ) -> None:
        shown = self._patterns.get(pattern)
        if shown is None:
            shown = self._patterns[pattern] = _route_pattern(pattern)
        route = Route(source, target, shown)
        histogram = self._routes.get(route)
        if histogram is None:
            histogram = self._routes[route] = LatencyHistogram()
        histogram.record(latency_ns)

    def reset(self) -> None:
        """Forget every sample: what follows is a window of its own (a benchmark's)."""
        self._routes.clear()

    def messages(self, source: EngineType | str, target: EngineType | str, pattern: str) -> int:
        histogram = self._routes.get(Route(source, target, pattern))
        return histogram.count if histogram is not None else 0

    def routes(self, *, buckets: bool = False) -> list[dict[str, Any]]:
        """Every route seen, sorted, as the report shows it (latencies in microseconds); with
        ``buckets``, each histogram's buckets too (``{"bucket": samples}``), from which a
        reader takes the percentiles of a window of its own."""
        rows = []
        for route in sorted(self._routes):
            histogram = self._routes[route]
            rows.append(
                {
                    "from": str(route.source),
                    "to": str(route.target),
                    "topic": route.pattern,
                    "messages": histogram.count,
                    "p50_us": round(histogram.percentile(50) / 1e3, 1),
                    "p99_us": round(histogram.percentile(99) / 1e3, 1),
                    "max_us": round(histogram.max_ns / 1e3, 1),
                }
            )
            if buckets:
                rows[-1]["buckets"] = {str(b): n for b, n in histogram.buckets().items()}
        return rows


def _route_pattern(pattern: str) -> str:
    if pattern.startswith(MARKETDATA_PREFIX) and not is_wildcard(pattern):
        data_type = pattern[len(MARKETDATA_PREFIX) :].partition(".")[0]
        return f"{MARKETDATA_PREFIX}{data_type}.*"
    return pattern
