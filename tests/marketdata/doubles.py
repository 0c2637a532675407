"""A source double for hub tests: counts its calls, can be held, made to fail, or slowed."""

from __future__ import annotations

import asyncio

from starmesh.core.clock import Clock
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    SourceNotConfiguredError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from starmesh.core.payloads import MarketData, Quote
from starmesh.marketdata.source import DataRequest, RateLimit, SourceStatus

GENEROUS = RateLimit(1_000)


class CountingSource:
    """Serves quotes whose bid is the number of the call that produced them."""

    def __init__(
        self,
        name: str = "counting",
        *,
        rate_limit: RateLimit = GENEROUS,
        known: frozenset[str] | None = None,
        data_types: frozenset[DataType] = frozenset({DataType.QUOTE}),
        clock: Clock | None = None,
        configured: bool = True,
    ) -> None:
        self._name = name
        self._rate_limit = rate_limit
        self._known = known
        self._data_types = data_types
        self._clock = clock
        self._configured = configured
        self.calls: list[DataRequest] = []
        self.call_times: list[float] = []
        self.failing = False
        self.gate: asyncio.Event | None = None
        """When set to an unset event, every fetch waits for it."""
        self.closed = False
        self.cancelled = 0
        """Fetches cancelled while under way (nobody waited for them any more)."""

    @property
    def name(self) -> str:
        return self._name

    @property
    def data_types(self) -> frozenset[DataType]:
        return self._data_types

    @property
    def rate_limit(self) -> RateLimit:
        return self._rate_limit

    def status(self) -> SourceStatus:
        if self._configured:
            return SourceStatus(name=self._name, state="configured", connections=1)
        return SourceStatus(name=self._name, state="unconfigured", connections=1)

    async def aclose(self) -> None:
        self.closed = True

    async def fetch(self, request: DataRequest) -> MarketData:
        self.calls.append(request)
        if not self._configured:
            raise SourceNotConfiguredError(f"set STARMESH_{self._name.upper()}_KEY")
        if self._clock is not None:
            self.call_times.append(self._clock.monotonic())
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if self._known is not None and request.symbol not in self._known:
            raise UnknownSymbolError(f"{self._name} has no {request.symbol!r}")
        if self.failing:
            raise SourceUnavailableError(f"{self._name} is down (HTTP 503)")
        n = float(len(self.calls))
        return Quote(symbol=request.symbol, bid=n, ask=n + 0.01, bid_size=100, ask_size=100)
