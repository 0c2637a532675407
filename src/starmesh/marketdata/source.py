"""What a market-data source is, to the hub.

A source turns a :class:`DataRequest` into one typed payload (``Quote``, ``BarSeries``, ...)
or raises a :class:`~starmesh.core.errors.MarketDataError` subclass saying why not. The hub
wraps every source with its cache, single-flight, rate limit and circuit breaker, so a source
is only the provider's request and parsing code. Each source holds one connection (an
``httpx.AsyncClient`` or an SDK session) for its whole life, however many engines ask.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final, Literal, Protocol, runtime_checkable

import msgspec

from starmesh.core.enums import DataType
from starmesh.core.payloads import MarketData

__all__ = [
    "DataRequest",
    "RateLimit",
    "Source",
    "SourceStatus",
    "StreamingSource",
]

_UNITS: Final = ((86_400, "day"), (3_600, "hour"), (60, "min"), (1, "s"))


class RateLimit(msgspec.Struct, frozen=True):
    """At most ``requests`` per ``per_seconds``, in bursts of at most ``burst`` (default:
    ``requests``, or 1 when ``requests`` is fractional).
    """

    requests: float
    per_seconds: float = 1.0
    burst: int | None = None

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.per_seconds

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, int(self.requests))

    def __str__(self) -> str:
        """``25/day``, ``1,000/hour``, ``45/s``: in its natural unit (short: tables show it)."""
        for seconds, unit in _UNITS:
            if self.per_seconds == seconds:
                return f"{self.requests:,g}/{unit}"
        return f"{self.requests:,g} per {self.per_seconds:g} s"


class DataRequest(msgspec.Struct, frozen=True):
    """One value asked of one source: the unit the hub caches, coalesces and counts."""

    source: str
    data_type: DataType
    symbol: str
    params: tuple[tuple[str, str], ...] = ()
    """Sorted (name, value) pairs, e.g. (("interval", "1d"), ("lookback", "100"))."""

    @classmethod
    def of(
        cls, source: str, data_type: DataType, symbol: str, params: Mapping[str, str] | None = None
    ) -> DataRequest:
        return cls(source, data_type, symbol, tuple(sorted((params or {}).items())))

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return default


class SourceStatus(msgspec.Struct, frozen=True):
    name: str
    state: Literal["configured", "unconfigured"]
    detail: str = ""
    """Why it is unconfigured (e.g. which setting is missing); never a credential."""
    connections: int = 0
    """Connections the source holds open (one, for an HTTP source, whatever the load)."""


@runtime_checkable
class Source(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def data_types(self) -> frozenset[DataType]: ...

    @property
    def rate_limit(self) -> RateLimit: ...

    async def fetch(self, request: DataRequest) -> MarketData:
        """The value ``request`` asks for, or a MarketDataError subclass saying why not."""
        ...

    def status(self) -> SourceStatus: ...

    async def aclose(self) -> None:
        """Close the source's connection."""
        ...


@runtime_checkable
class StreamingSource(Source, Protocol):
    """A source that also pushes updates (a live feed, a replay)."""

    def stream(
        self, symbols: list[str], data_types: list[DataType]
    ) -> AsyncIterator[tuple[str, DataType, MarketData]]:
        """Yield (symbol, data type, value) as the source produces them, until cancelled."""
        ...
