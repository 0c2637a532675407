"""``dbnomics``: macro series from the many providers DBnomics gathers (IMF, Eurostat, OECD, ...).

A symbol is DBnomics' full series id, ``PROVIDER/DATASET/SERIES`` (``AMECO/ZUTN/EA19.1.0.0.0.ZUTN``,
``IMF/CPI/M.FR.PCPI_IX``); series codes may hold dots but never a slash. A fetch reads
``v22/series/{provider}/{dataset}/{series}?observations=1`` and returns an
:class:`EconomicSeries` from ``series.docs[0]``: its ``period_start_day`` / ``value`` arrays
(``"NA"`` where the provider has no value) give the observations, ``series_name`` the title
and ``@frequency`` the frequency. Param: ``lookback`` (the last N observations).

DBnomics needs no key; it asks to be used politely, so the default declared limit is five
requests a second.
"""

from __future__ import annotations

from typing import Final, Unpack
from urllib.parse import quote

import msgspec

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import InvalidRequestError, MalformedResponseError, UnknownSymbolError
from starmesh.core.payloads import EconomicObservation, EconomicSeries, MarketData
from starmesh.marketdata.source import DataRequest, RateLimit
from starmesh.marketdata.sources.http import (
    HttpOptions,
    HttpSource,
)
from starmesh.marketdata.sources.params import positive_int_param, to_float

__all__ = ["DEFAULT_RATE_LIMIT", "DBnomicsSource"]

DEFAULT_RATE_LIMIT: Final = RateLimit(5, 1.0)
BASE_URL: Final = "https://api.db.nomics.world"


class _Doc(msgspec.Struct, frozen=True):
    provider_code: str
    dataset_code: str
    series_code: str
    period_start_day: list[str]
    value: list[float | str | None]
    series_name: str | None = None
    frequency: str | None = msgspec.field(default=None, name="@frequency")


class _Docs(msgspec.Struct, frozen=True):
    docs: list[_Doc]


class _Answer(msgspec.Struct, frozen=True):
    series: _Docs


class DBnomicsSource(HttpSource):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        **options: Unpack[HttpOptions],
    ) -> None:
        super().__init__(
            name="dbnomics",
            data_types=(DataType.ECONOMIC,),
            clock=clock,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            default_base_url=BASE_URL,
            **options,
        )

    async def fetch(self, request: DataRequest) -> MarketData:
        self._check(request)
        parts = request.symbol.split("/")
        if len(parts) != 3 or not all(parts):
            raise InvalidRequestError(
                f"dbnomics: the symbol must be PROVIDER/DATASET/SERIES, got {request.symbol!r}"
            )
        lookback = positive_int_param(request, "lookback", None, 1_000_000)
        path = "/v22/series/" + "/".join(quote(part, safe="") for part in parts)
        response = await self._get(path, {"observations": "1"})
        docs = self._convert(self._json(response), _Answer, "series answer").series.docs
        if not docs:
            raise UnknownSymbolError(f"dbnomics: no series {request.symbol!r}")
        doc = docs[0]
        if len(doc.period_start_day) != len(doc.value):
            raise MalformedResponseError(
                f"dbnomics {request.symbol}: {len(doc.period_start_day)} periods "
                f"but {len(doc.value)} values"
            )
        observations = [
            EconomicObservation(date=day, value=_value(value, f"dbnomics {request.symbol} {day}"))
            for day, value in zip(doc.period_start_day, doc.value, strict=True)
        ]
        if lookback is not None:
            observations = observations[-lookback:]
        series_id = f"{doc.provider_code}/{doc.dataset_code}/{doc.series_code}"
        return EconomicSeries(
            series_id=series_id,
            title=doc.series_name or series_id,
            observations=observations,
            frequency=doc.frequency,
        )


def _value(value: float | str | None, where: str) -> float | None:
    """A value; DBnomics writes ``"NA"`` where the provider has none."""
    if value is None or value == "NA":
        return None
    return to_float(value, where)
