"""One source as the hub calls it: behind its circuit breaker, token bucket and timeout.

Whatever a source raises comes out as a :class:`MarketDataError` of the right kind, and
only the source's own faults count against its breaker: a request it rightly refused (an
unknown symbol, say) does not open it. Each call has one deadline, the caller's: the wait for
the rate limit and the call itself both fit in it, a wait that cannot fit is refused at once
(``SourceThrottledError``), and the source sees what is left (:mod:`~.budget`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.errors import (
    MalformedResponseError,
    MarketDataError,
    MarketDataTimeout,
    SourceThrottledError,
    SourceUnavailableError,
    UnsupportedDataTypeError,
)
from starmesh.core.payloads import MarketData
from starmesh.marketdata.accounting import HubAccounting
from starmesh.marketdata.budget import budget
from starmesh.marketdata.limits import CircuitBreaker, TokenBucket
from starmesh.marketdata.source import DataRequest, Source

__all__ = ["SOURCE_FAULTS", "Upstream"]

logger = logging.getLogger(__name__)

SOURCE_FAULTS = (
    SourceUnavailableError,
    SourceThrottledError,
    MalformedResponseError,
    MarketDataTimeout,
)
"""Failures of the source itself: they count against its circuit breaker, and the last value
is served (stale) rather than nothing. A bad request is not the source's fault."""


class Upstream:
    def __init__(
        self,
        source: Source,
        *,
        settings: Settings,
        clock: Clock,
        accounting: HubAccounting,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.source = source
        self.name = source.name
        self.bucket = TokenBucket(source.rate_limit, clock)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s, clock)
        self._clock = clock
        self._accounting = accounting
        self._sleep = sleep

    async def fetch(self, request: DataRequest, deadline: float) -> MarketData:
        """One upstream call for ``request``, waiting for the rate limit if it can, all before
        ``deadline`` (on the hub's clock).
        """
        name, accounting, clock = self.name, self._accounting, self._clock
        if request.data_type not in self.source.data_types:
            raise UnsupportedDataTypeError(
                f"source {name!r} does not serve {request.data_type.value}"
            )
        if not self.breaker.allow():
            raise SourceUnavailableError(
                f"source {name!r} is failing: its circuit breaker is open "
                f"(next try in {self.breaker.retry_in:.1f} s)"
            )
        left = deadline - clock.monotonic()
        if left <= 0:
            raise MarketDataTimeout(f"no time left to ask source {name!r}")
        wait = self.bucket.reserve(max_wait=left)
        if wait is None:
            # Refused, not queued: not the source's fault, so not counted against its breaker.
            accounting.throttled[name] += 1
            raise SourceThrottledError(
                f"source {name!r} is at its rate limit ({self.source.rate_limit}): a call "
                f"would wait longer than the {left:.2f} s left to answer"
            )
        accounting.upstream_calls[name] += 1
        try:
            async with asyncio.timeout(left):
                if wait > 0:
                    accounting.rate_limit_waits[name] += 1
                    accounting.rate_limit_wait_s[name] += wait
                    await self._sleep(wait)
                with budget(clock, deadline):
                    data = await self.source.fetch(request)
        except SOURCE_FAULTS:
            self.failed()
            raise
        except TimeoutError:
            self.failed()
            raise MarketDataTimeout(
                f"source {name!r} did not answer within the {left:.2f} s left to answer"
            ) from None
        except MarketDataError:
            self.breaker.record_success()  # it answered; the request was the problem
            raise
        except Exception as exc:
            self.failed()
            logger.exception(
                "source %r failed on %s %s", name, request.data_type.value, request.symbol
            )
            raise MalformedResponseError(f"source {name!r} failed: {exc!r}") from exc
        self.breaker.record_success()
        return data

    def failed(self) -> None:
        """Count a fault of the source (a failed call, a broken stream)."""
        self._accounting.source_errors[self.name] += 1
        self.breaker.record_failure()
