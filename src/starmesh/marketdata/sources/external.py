"""The external providers' adapters, by name.

Each entry builds a source from the settings and a clock; the adapter classes are such
factories themselves (their other constructor arguments, limits included, have defaults).
The HTTP ones also take :class:`HttpOptions` (the recorder passes its own transport).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Unpack

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.marketdata.source import Source
from starmesh.marketdata.sources.alphavantage import AlphaVantageSource
from starmesh.marketdata.sources.datagov import DataGovSource
from starmesh.marketdata.sources.dbnomics import DBnomicsSource
from starmesh.marketdata.sources.edgar import EdgarSource
from starmesh.marketdata.sources.fred import FredSource
from starmesh.marketdata.sources.http import HttpOptions
from starmesh.marketdata.sources.ibkr import IbkrSource
from starmesh.marketdata.sources.tradingeconomics import TradingEconomicsSource
from starmesh.marketdata.sources.yahoo import YahooSource

__all__ = ["EXTERNAL_SOURCES", "HTTP_SOURCES", "HttpSourceFactory"]


class HttpSourceFactory(Protocol):
    def __call__(
        self, settings: Settings, clock: Clock, **options: Unpack[HttpOptions]
    ) -> Source: ...


HTTP_SOURCES: dict[str, HttpSourceFactory] = {
    "alphavantage": AlphaVantageSource,
    "fred": FredSource,
    "edgar": EdgarSource,
    "datagov": DataGovSource,
    "tradingeconomics": TradingEconomicsSource,
    "dbnomics": DBnomicsSource,
    "yahoo": YahooSource,
}
EXTERNAL_SOURCES: dict[str, Callable[[Settings, Clock], Source]] = {
    "ibkr": IbkrSource,  # a socket protocol (ib_async), not HTTP
    **HTTP_SOURCES,
}
