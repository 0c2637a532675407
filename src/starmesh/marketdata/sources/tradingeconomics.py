"""``tradingeconomics``: macro indicators from Trading Economics.

A symbol is ``country/indicator`` as Trading Economics names them (``united states/gdp``,
``mexico/inflation rate``). A fetch reads
``historical/country/{country}/indicator/{indicator}[/{start}[/{end}]]?c=KEY&f=json`` and
returns an :class:`EconomicSeries` of its ``DateTime`` / ``Value`` rows, titled
``"{Country} {Category}"``, with the provider's ``HistoricalDataSymbol`` as the series id.
Params: ``start`` / ``end`` (``YYYY-MM-DD``), ``lookback`` (the last N observations).

The key (``client:secret``) travels as the ``c`` query parameter. An empty list means the
provider has no such country or indicator; bad credentials and indicators outside a free
plan are HTTP 401/403 with the provider's message. The API allows one request a second, the
default declared limit.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Unpack
from urllib.parse import quote

import msgspec

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    SourceUnauthorizedError,
    UnknownSymbolError,
)
from starmesh.core.payloads import EconomicObservation, EconomicSeries, MarketData
from starmesh.marketdata.source import DataRequest, RateLimit
from starmesh.marketdata.sources.credentials import credential
from starmesh.marketdata.sources.http import (
    HttpOptions,
    HttpSource,
    provider_message,
)
from starmesh.marketdata.sources.params import iso_date_param, positive_int_param

__all__ = ["DEFAULT_RATE_LIMIT", "TradingEconomicsSource"]

DEFAULT_RATE_LIMIT: Final = RateLimit(1, 1.0)
BASE_URL: Final = "https://api.tradingeconomics.com"
MISSING: Final = (
    "set STARMESH_TRADINGECONOMICS_KEY (client:secret from https://developer.tradingeconomics.com)"
)


class _Row(msgspec.Struct, frozen=True):
    Country: str
    Category: str
    DateTime: str
    Value: float | None
    Frequency: str | None = None
    HistoricalDataSymbol: str | None = None


class TradingEconomicsSource(HttpSource):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        **options: Unpack[HttpOptions],
    ) -> None:
        key = credential("query", "c", settings.tradingeconomics_key)
        super().__init__(
            name="tradingeconomics",
            data_types=(DataType.ECONOMIC,),
            clock=clock,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            default_base_url=BASE_URL,
            credentials=key,
            missing=MISSING,
            **options,
        )

    async def fetch(self, request: DataRequest) -> MarketData:
        self._check(request)
        parts = request.symbol.split("/")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise InvalidRequestError(
                f"tradingeconomics: the symbol must be country/indicator, got {request.symbol!r}"
            )
        country, indicator = (p.strip() for p in parts)
        start, end = iso_date_param(request, "start"), iso_date_param(request, "end")
        if end is not None and start is None:
            raise InvalidRequestError("tradingeconomics: end needs a start")
        lookback = positive_int_param(request, "lookback", None, 100_000)
        path = (
            f"/historical/country/{quote(country, safe='')}/indicator/{quote(indicator, safe='')}"
        )
        path += "".join(f"/{d}" for d in (start, end) if d)
        response = await self._get(path, {"f": "json"})
        data = self._json(response)
        if not isinstance(data, list):
            message = self._scrub(provider_message(response))
            if "credential" in message.lower() or "access" in message.lower():
                raise SourceUnauthorizedError(f"tradingeconomics {request.symbol}: {message}")
            raise MalformedResponseError(
                f"tradingeconomics {request.symbol}: expected a list of rows, got {message!r}"
            )
        rows = self._convert(data, list[_Row], "historical rows")
        if not rows:
            raise UnknownSymbolError(
                f"tradingeconomics: no data for country {country!r}, indicator {indicator!r}"
            )
        observations = sorted(
            (EconomicObservation(date=_day(row.DateTime), value=row.Value) for row in rows),
            key=lambda o: o.date,
        )
        if lookback is not None:
            observations = observations[-lookback:]
        first = rows[0]
        return EconomicSeries(
            series_id=first.HistoricalDataSymbol or request.symbol,
            title=f"{first.Country} {first.Category}",
            observations=observations,
            frequency=first.Frequency,
        )


def _day(stamp: str) -> str:
    """The ISO date of a ``DateTime`` such as ``2024-03-31T00:00:00``."""
    try:
        return date.fromisoformat(stamp[:10]).isoformat()
    except ValueError:
        raise MalformedResponseError(f"tradingeconomics: bad DateTime {stamp!r}") from None
