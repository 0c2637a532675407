"""One working request per HTTP source, for the tests every HTTP adapter must pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.marketdata.source import DataRequest, RateLimit, Source
from starmesh.marketdata.sources.alphavantage import AlphaVantageSource
from starmesh.marketdata.sources.datagov import DataGovSource
from starmesh.marketdata.sources.dbnomics import DBnomicsSource
from starmesh.marketdata.sources.edgar import EdgarSource
from starmesh.marketdata.sources.fred import FredSource
from starmesh.marketdata.sources.tradingeconomics import TradingEconomicsSource
from starmesh.marketdata.sources.yahoo import YahooSource

AV_KEY = "AVkey-7Q2M-secret-5f2c9e"
FRED_KEY = "0123456789abcdeffedcba9876543210"
TE_KEY = "te1a2b3c4d5e6f7:sec9h8g7f6e5d4c"
DATAGOV_KEY = "DGkEy9x8W7v6U5t4S3r2Q1p0OnMlKjIhGfEdCbA"
EDGAR_AGENT = "Starmesh Tests starmesh-tests@example.com"


@dataclass(frozen=True)
class Case:
    """A source, settings that configure it, one request and the answers it needs."""

    name: str
    build: Callable[..., Source]
    settings: dict[str, Any]
    request: DataRequest
    routes: tuple[tuple[str, str], ...]
    """(URL, fixture file) in the order the fetch asks for them; the last one is the data."""
    default_limit: RateLimit
    unserved: DataType
    secret: str | None = None
    """The credential that must never leak (EDGAR's User-Agent is not one)."""
    setting: str | None = None
    """The setting that must be set for the source to be configured."""
    retries_429: bool = True

    def configured(self) -> Settings:
        return Settings(**self.settings)

    def unconfigured(self) -> Settings:
        assert self.setting is not None
        return Settings(**{**self.settings, self.setting: None})

    def source(self, clock: Clock, **kwargs: Any) -> Source:
        return self.build(self.configured(), clock, **kwargs)


CASES = (
    Case(
        "alphavantage",
        AlphaVantageSource,
        {"alphavantage_key": SecretStr(AV_KEY)},
        DataRequest.of("alphavantage", DataType.BAR, "IBM"),
        (("https://www.alphavantage.co/query", "time_series_daily_IBM.json"),),
        RateLimit(25, 86_400),
        DataType.QUOTE,
        secret=AV_KEY,
        setting="alphavantage_key",
    ),
    Case(
        "fred",
        FredSource,
        {"fred_key": SecretStr(FRED_KEY)},
        DataRequest.of("fred", DataType.ECONOMIC, "DGS10"),
        (
            ("https://api.stlouisfed.org/fred/series", "series_DGS10.json"),
            ("https://api.stlouisfed.org/fred/series/observations", "observations_DGS10.json"),
        ),
        RateLimit(2, 1),
        DataType.BAR,
        secret=FRED_KEY,
        setting="fred_key",
    ),
    Case(
        "edgar",
        EdgarSource,
        {"edgar_user_agent": EDGAR_AGENT},
        DataRequest.of("edgar", DataType.FUNDAMENTAL, "AAPL"),
        (
            ("https://www.sec.gov/files/company_tickers.json", "company_tickers.json"),
            (
                "https://data.sec.gov/api/xbrl/companyfacts/CIK0000320193.json",
                "companyfacts_CIK0000320193.json",
            ),
        ),
        RateLimit(10, 1),
        DataType.QUOTE,
        setting="edgar_user_agent",
    ),
    Case(
        "datagov",
        DataGovSource,
        {"datagov_key": SecretStr(DATAGOV_KEY)},
        DataRequest.of("datagov", DataType.NEWS, "price index"),
        (
            (
                "https://api.gsa.gov/technology/datagov/v3/action/package_search",
                "package_search_price_index.json",
            ),
        ),
        RateLimit(1_000, 3_600),
        DataType.ECONOMIC,
        secret=DATAGOV_KEY,
        setting="datagov_key",
        retries_429=False,
    ),
    Case(
        "tradingeconomics",
        TradingEconomicsSource,
        {"tradingeconomics_key": SecretStr(TE_KEY)},
        DataRequest.of("tradingeconomics", DataType.ECONOMIC, "united states/gdp"),
        (
            (
                "https://api.tradingeconomics.com/historical/country/united%20states/indicator/gdp",
                "historical_united_states_gdp.json",
            ),
        ),
        RateLimit(1, 1),
        DataType.BAR,
        secret=TE_KEY,
        setting="tradingeconomics_key",
    ),
    Case(
        "dbnomics",
        DBnomicsSource,
        {},
        DataRequest.of("dbnomics", DataType.ECONOMIC, "AMECO/ZUTN/EA19.1.0.0.0.ZUTN"),
        (
            (
                "https://api.db.nomics.world/v22/series/AMECO/ZUTN/EA19.1.0.0.0.ZUTN",
                "series_AMECO_ZUTN_EA19.1.0.0.0.ZUTN.json",
            ),
        ),
        RateLimit(5, 1),
        DataType.QUOTE,
    ),
    Case(
        "yahoo",
        YahooSource,
        {},
        DataRequest.of("yahoo", DataType.BAR, "AAPL", {"range": "5d"}),
        (("https://query1.finance.yahoo.com/v8/finance/chart/AAPL", "chart_AAPL_1d_5d.json"),),
        RateLimit(1, 1),
        DataType.FUNDAMENTAL,
    ),
)
KEYED = tuple(case for case in CASES if case.secret is not None)
CONFIGURABLE = tuple(case for case in CASES if case.setting is not None)
