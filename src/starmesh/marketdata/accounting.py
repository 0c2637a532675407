"""What the hub counts: requests, cache, upstream calls, coalescing, waits, distribution."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

import numpy as np

from starmesh.core.enums import EngineType

__all__ = ["HubAccounting"]

_LABELS = frozenset({*(e.value for e in EngineType), "http", "direct"})


class HubAccounting:
    def __init__(self, latency_window: int = 10_000) -> None:
        self.requests = 0
        self.requests_by: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.cache_hits = 0
        self.cache_misses = 0
        self.stale_served = 0
        self.refreshes_ahead = 0
        self.upstream_calls: defaultdict[str, int] = defaultdict(int)
        self.source_errors: defaultdict[str, int] = defaultdict(int)
        self.rate_limit_waits: defaultdict[str, int] = defaultdict(int)
        self.rate_limit_wait_s: defaultdict[str, float] = defaultdict(float)
        self.throttled: defaultdict[str, int] = defaultdict(int)
        """Calls refused at once: the rate-limit wait would outlast the caller's deadline."""
        self.distributed = 0
        self.distributed_by_type: defaultdict[str, int] = defaultdict(int)
        self.distribution_failures = 0
        self.invalid_requests = 0
        """Requests refused as malformed (bad symbols or types, too many pairs, ...)."""
        self._distribution_us: deque[float] = deque(maxlen=latency_window)

    def request(self, engine: str, data_type: str) -> None:
        self.requests += 1
        # The engine name comes from callers (an HTTP query parameter): only known names
        # become a metric label, so a caller cannot make /metrics grow without bound.
        self.requests_by[engine if engine in _LABELS else "other"][data_type] += 1

    def distribution(self, seconds: float, data_type: str) -> None:
        self.distributed += 1
        self.distributed_by_type[data_type] += 1
        self._distribution_us.append(seconds * 1e6)

    def summary(self, coalesced: int) -> dict[str, Any]:
        lookups = self.cache_hits + self.cache_misses
        upstream = sum(self.upstream_calls.values())
        latency: dict[str, float] = {}
        if self._distribution_us:
            p50, p99 = np.percentile(np.fromiter(self._distribution_us, float), [50, 99])
            latency = {"p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1)}
        return {
            "requests": self.requests,
            "requests_by_engine": {e: dict(by) for e, by in self.requests_by.items()},
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "hit_rate": round(self.cache_hits / lookups, 4) if lookups else 0.0,
            "coalesced": coalesced,
            "stale_served": self.stale_served,
            "refreshes_ahead": self.refreshes_ahead,
            "upstream_calls": dict(self.upstream_calls),
            "upstream_total": upstream,
            # The "API call consolidation": requests answered without an upstream call of their own.
            "saved_upstream_calls": self.requests - upstream,
            "consolidation_ratio": round(1 - upstream / self.requests, 4) if self.requests else 0.0,
            "source_errors": dict(self.source_errors),
            "rate_limit_waits": dict(self.rate_limit_waits),
            "rate_limit_wait_s": {k: round(v, 3) for k, v in self.rate_limit_wait_s.items()},
            "throttled": dict(self.throttled),
            "distributed": self.distributed,
            "distributed_by_type": dict(self.distributed_by_type),
            "distribution_failures": self.distribution_failures,
            "invalid_requests": self.invalid_requests,
            "distribution_latency": latency,
        }
