"""``fred``: economic series from the St. Louis Fed's FRED API.

A symbol is a FRED series id (``UNRATE``, ``CPIAUCSL``, ``DGS10``). A fetch reads
``fred/series/observations?series_id=...&file_type=json`` and returns an
:class:`EconomicSeries`; its title, units and frequency come from ``fred/series``, asked once
per series for the source's life (they do not change between observations).

Params: ``start`` / ``end`` (``YYYY-MM-DD``, FRED's ``observation_start`` / ``_end``),
``lookback`` (the last N observations), ``units`` (FRED's transformations: ``lin``, ``chg``,
``ch1``, ``pch``, ``pc1``, ``pca``, ``cch``, ``cca``, ``log``).

FRED writes a missing value as ``"."``: it becomes ``None``. Its errors are JSON bodies with
``error_code`` and ``error_message``; a series that does not exist and a bad or missing
``api_key`` are both HTTP 400, told apart by the message. FRED throttles per second (HTTP
429 above roughly two requests a second), the default declared limit.
"""

from __future__ import annotations

from typing import Final, Unpack

import httpx
import msgspec

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MarketDataError,
    SourceUnauthorizedError,
    UnknownSymbolError,
)
from starmesh.core.payloads import EconomicObservation, EconomicSeries, MarketData
from starmesh.marketdata.source import DataRequest, RateLimit
from starmesh.marketdata.sources.credentials import credential
from starmesh.marketdata.sources.http import (
    HttpOptions,
    HttpSource,
    status_error,
)
from starmesh.marketdata.sources.params import (
    choice_param,
    iso_date_param,
    positive_int_param,
    to_float,
)

__all__ = ["DEFAULT_RATE_LIMIT", "FredSource"]

DEFAULT_RATE_LIMIT: Final = RateLimit(2, 1.0)
BASE_URL: Final = "https://api.stlouisfed.org"
MISSING: Final = (
    "set STARMESH_FRED_KEY (free key: https://fred.stlouisfed.org/docs/api/api_key.html)"
)
_UNITS: Final = {
    "lin": "", "chg": "Change", "ch1": "Change from Year Ago", "pch": "Percent Change",
    "pc1": "Percent Change from Year Ago", "pca": "Compounded Annual Rate of Change",
    "cch": "Continuously Compounded Rate of Change",
    "cca": "Continuously Compounded Annual Rate of Change", "log": "Natural Log",
}  # fmt: skip


class _Series(msgspec.Struct, frozen=True):
    id: str
    title: str
    frequency: str | None = None
    units: str | None = None


class _SeriesAnswer(msgspec.Struct, frozen=True):
    seriess: list[_Series]


class _Observation(msgspec.Struct, frozen=True):
    date: str
    value: str


class _Observations(msgspec.Struct, frozen=True):
    observations: list[_Observation]


class FredSource(HttpSource):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        **options: Unpack[HttpOptions],
    ) -> None:
        key = credential("query", "api_key", settings.fred_key)
        super().__init__(
            name="fred",
            data_types=(DataType.ECONOMIC,),
            clock=clock,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            default_base_url=BASE_URL,
            credentials=key,
            missing=MISSING,
            **options,
        )
        self._series: dict[str, _Series] = {}

    async def fetch(self, request: DataRequest) -> MarketData:
        self._check(request)
        series_id = request.symbol
        if not series_id:
            raise InvalidRequestError("fred: the symbol must be a FRED series id, e.g. UNRATE")
        units = choice_param(request, "units", "lin", _UNITS)
        lookback = positive_int_param(request, "lookback", None, 100_000)
        params = {"series_id": series_id, "file_type": "json", "units": units}
        for name, fred_name in (("start", "observation_start"), ("end", "observation_end")):
            value = iso_date_param(request, name)
            if value is not None:
                params[fred_name] = value
        if lookback is not None:
            params |= {"sort_order": "desc", "limit": str(lookback)}
        series = await self._describe_series(series_id)
        response = await self._get("/fred/series/observations", params)
        answer = self._convert(self._json(response), _Observations, "observations")
        observations = [
            EconomicObservation(
                date=o.date,
                value=None if o.value == "." else to_float(o.value, f"fred {series_id} {o.date}"),
            )
            for o in answer.observations
        ]
        if lookback is not None:
            observations.reverse()  # asked newest first to take the last N; served oldest first
        unit = series.units
        if _UNITS[units]:
            unit = f"{_UNITS[units]} ({unit})" if unit else _UNITS[units]
        return EconomicSeries(
            series_id=series.id,
            title=series.title,
            observations=observations,
            unit=unit,
            frequency=series.frequency,
        )

    async def _describe_series(self, series_id: str) -> _Series:
        known = self._series.get(series_id)
        if known is None:
            response = await self._get(
                "/fred/series", {"series_id": series_id, "file_type": "json"}
            )
            answer = self._convert(self._json(response), _SeriesAnswer, "series")
            if not answer.seriess:
                raise UnknownSymbolError(f"fred: no series {series_id!r}")
            known = self._series[series_id] = answer.seriess[0]
        return known

    def _classify(self, response: httpx.Response, message: str) -> MarketDataError:
        if response.status_code == 400:
            lowered = message.lower()
            if "api_key" in lowered:
                return SourceUnauthorizedError(message)
            if "does not exist" in lowered:
                return UnknownSymbolError(message)
        return status_error(response.status_code, message)
