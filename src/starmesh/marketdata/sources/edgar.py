"""``edgar``: company fundamentals and filings from the SEC's EDGAR JSON APIs.

A symbol is a ticker (``AAPL``; ``BRK.B`` is read as the SEC's ``BRK-B``) or a CIK
(``320193`` or ``CIK0000320193``). Tickers are resolved with
``https://www.sec.gov/files/company_tickers.json``, fetched once and kept for the source's life.

- ``fundamental``: ``data.sec.gov/api/xbrl/companyfacts/CIK##########.json`` as a
  :class:`Fundamental` of the latest fiscal year: for each named us-gaap concept, the value
  from annual reports (10-K, 20-F, 40-F and amendments, ``fp`` = ``FY``; a duration must span
  about a year) for the latest period end, restated values preferred. Concepts whose latest
  annual value is for an older year are left out rather than mixed in. Param: ``concepts``
  (comma-separated us-gaap names; the default is the headline income-statement and
  balance-sheet ones). ``period`` is ``FY<fiscal year>`` as the original report states it.
- ``news``: ``data.sec.gov/submissions/CIK##########.json`` as a :class:`NewsFeed` of the
  latest filings, newest first, read from the column arrays under ``filings.recent``. There
  is no filing payload; a filing is news about the company, with the document's URL.
  Params: ``forms`` (comma-separated, e.g. ``10-K,10-Q,8-K``), ``limit`` (default 20).

The SEC requires a ``User-Agent`` of the form ``Name email@example.com``
(``STARMESH_EDGAR_USER_AGENT``) and allows at most ten requests a second, the default
declared limit. It answers both an undeclared client and a client over the limit with HTTP
403 and an HTML page; the page's heading tells which.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime
from typing import Final, Unpack

import httpx
import msgspec

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    MarketDataError,
    SourceThrottledError,
    SourceUnauthorizedError,
    UnknownSymbolError,
)
from starmesh.core.payloads import Fundamental, MarketData, NewsFeed, NewsItem
from starmesh.marketdata.source import DataRequest, RateLimit
from starmesh.marketdata.sources.http import (
    HttpOptions,
    HttpSource,
    status_error,
)
from starmesh.marketdata.sources.params import positive_int_param, to_ns

__all__ = ["DEFAULT_CONCEPTS", "DEFAULT_RATE_LIMIT", "EdgarSource"]

DEFAULT_RATE_LIMIT: Final = RateLimit(10, 1.0)
TICKERS_URL: Final = "https://www.sec.gov/files/company_tickers.json"
DATA_URL: Final = "https://data.sec.gov"
ARCHIVES_URL: Final = "https://www.sec.gov/Archives/edgar/data"
DEFAULT_CONCEPTS: Final = (
    "Revenues", "RevenueFromContractWithCustomerExcludingAssessedTax", "NetIncomeLoss",
    "OperatingIncomeLoss", "EarningsPerShareBasic", "EarningsPerShareDiluted", "Assets",
    "Liabilities", "StockholdersEquity", "CashAndCashEquivalentsAtCarryingValue",
)  # fmt: skip
_ANNUAL_FORMS: Final = frozenset({"10-K", "10-K/A", "20-F", "20-F/A", "40-F", "40-F/A"})
_UNIT_PREFERENCE: Final = ("USD", "USD/shares", "shares", "pure")
_USER_AGENT: Final = re.compile(r"\S.*\s\S+@\S+\.\S+")
_CONCEPT: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_FORM: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/ ]*")


class _Ticker(msgspec.Struct, frozen=True):
    cik_str: int
    ticker: str


class _Fact(msgspec.Struct, frozen=True):
    end: str
    val: float
    filed: str
    start: str | None = None
    fy: int | None = None
    fp: str | None = None
    form: str | None = None


class _Concept(msgspec.Struct, frozen=True):
    units: dict[str, list[_Fact]]


class _CompanyFacts(msgspec.Struct, frozen=True):
    cik: int
    entityName: str
    facts: dict[str, dict[str, _Concept]]


class _Recent(msgspec.Struct, frozen=True):
    accessionNumber: list[str]
    filingDate: list[str]
    reportDate: list[str]
    acceptanceDateTime: list[str]
    form: list[str]
    primaryDocument: list[str]
    primaryDocDescription: list[str]
    items: list[str]


class _Filings(msgspec.Struct, frozen=True):
    recent: _Recent


class _Submissions(msgspec.Struct, frozen=True):
    name: str
    filings: _Filings


class EdgarSource(HttpSource):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        tickers_url: str = TICKERS_URL,
        data_url: str = DATA_URL,
        **options: Unpack[HttpOptions],
    ) -> None:
        agent = (settings.edgar_user_agent or "").strip()
        missing = None
        if not agent:
            missing = (
                "set STARMESH_EDGAR_USER_AGENT to 'Name email@example.com' (the SEC requires it)"
            )
        elif not _USER_AGENT.fullmatch(agent):
            missing = (
                "STARMESH_EDGAR_USER_AGENT must be 'Name email@example.com' (the SEC requires it)"
            )
        super().__init__(
            name="edgar",
            data_types=(DataType.FUNDAMENTAL, DataType.NEWS),
            clock=clock,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            headers={"User-Agent": agent} if missing is None else None,
            missing=missing,
            **options,
        )
        self._tickers_url = tickers_url
        self._data_url = data_url.rstrip("/")
        self._ciks: dict[str, int] | None = None
        self._ciks_lock = asyncio.Lock()

    def _detail(self) -> str:
        return self._data_url

    async def fetch(self, request: DataRequest) -> MarketData:
        self._check(request)
        cik = await self._cik(request.symbol)
        if request.data_type is DataType.FUNDAMENTAL:
            return await self._fundamental(request, cik)
        return await self._filings(request, cik)

    async def _cik(self, symbol: str) -> int:
        """The CIK of a ticker or of a CIK written either way."""
        text = symbol.strip().upper()
        digits = text.removeprefix("CIK")
        if digits.isdigit():
            return int(digits)
        if not text:
            raise InvalidRequestError("edgar: the symbol must be a ticker or a CIK")
        async with self._ciks_lock:  # one download, however many ask at once
            if self._ciks is None:
                response = await self._get(self._tickers_url)
                # About 1 MB of JSON and 10,000 rows: parsed off the event loop, which would
                # otherwise stall every engine's request for tens of milliseconds.
                self._ciks = await asyncio.to_thread(self._tickers_from, response)
        cik = self._ciks.get(text.replace(".", "-"))
        if cik is None:
            raise UnknownSymbolError(f"edgar: no company with ticker {symbol!r} in company_tickers")
        return cik

    def _tickers_from(self, response: httpx.Response) -> dict[str, int]:
        """company_tickers.json as ticker -> CIK."""
        rows = self._convert(self._json(response), dict[str, _Ticker], "company_tickers")
        return {row.ticker.upper(): row.cik_str for row in rows.values()}

    async def _fundamental(self, request: DataRequest, cik: int) -> Fundamental:
        concepts = _names(request.param("concepts"), _CONCEPT, "concepts") or DEFAULT_CONCEPTS
        response = await self._get(f"{self._data_url}/api/xbrl/companyfacts/CIK{cik:010d}.json")
        company = self._convert(self._json(response), _CompanyFacts, "companyfacts")
        gaap = company.facts.get("us-gaap", {})
        chosen: dict[str, tuple[str, _Fact, int | None]] = {}
        for concept in concepts:
            if concept in gaap:
                picked = _latest_annual(gaap[concept])
                if picked is not None:
                    chosen[concept] = picked
        if not chosen:
            raise UnknownSymbolError(
                f"edgar {request.symbol}: no annual us-gaap facts for {', '.join(concepts)}"
            )
        end = max(fact.end for _, fact, _ in chosen.values())
        latest = {c: picked for c, picked in chosen.items() if picked[1].end == end}
        fiscal_year = next((fy for _, _, fy in latest.values() if fy is not None), None)
        currency = next((c for unit, _, _ in latest.values() if (c := _currency(unit))), None)
        return Fundamental(
            symbol=request.symbol,
            period=f"FY{fiscal_year if fiscal_year is not None else end[:4]}",
            metrics={concept: fact.val for concept, (_, fact, _) in latest.items()},
            currency=currency,
        )

    async def _filings(self, request: DataRequest, cik: int) -> NewsFeed:
        forms = {f.upper() for f in _names(request.param("forms"), _FORM, "forms")}
        limit = positive_int_param(request, "limit", 20, 1_000) or 20
        response = await self._get(f"{self._data_url}/submissions/CIK{cik:010d}.json")
        company = self._convert(self._json(response), _Submissions, "submissions")
        recent = company.filings.recent
        columns = [getattr(recent, field) for field in _Recent.__struct_fields__]
        if len({len(column) for column in columns}) != 1:
            raise MalformedResponseError(
                f"edgar {request.symbol}: the filings.recent columns differ in length"
            )
        items = [
            _filing(company.name, cik, request.symbol, *row)
            for row in zip(*columns, strict=True)
            if not forms or row[4].upper() in forms
        ]
        items.sort(key=lambda item: item.published_ns, reverse=True)
        return NewsFeed(symbol=request.symbol, items=items[:limit])

    def _classify(self, response: httpx.Response, message: str) -> MarketDataError:
        if response.status_code == 403:
            lowered = message.lower()
            if "threshold exceeded" in lowered and "undeclared" not in lowered:
                return SourceThrottledError(message)
            return SourceUnauthorizedError(f"{message}; check STARMESH_EDGAR_USER_AGENT")
        return status_error(response.status_code, message)


def _names(raw: str | None, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """A comma-separated parameter, each part checked against ``pattern``."""
    if raw is None:
        return ()
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    bad = [name for name in names if not pattern.fullmatch(name)]
    if bad or not names:
        raise InvalidRequestError(f"edgar: bad {what}: {raw!r}")
    return names


def _latest_annual(concept: _Concept) -> tuple[str, _Fact, int | None] | None:
    """(unit, value for the latest annual period end, fiscal year of the original report)."""
    unit: str | None = next((u for u in _UNIT_PREFERENCE if u in concept.units), None)
    unit = unit or next(iter(concept.units), None)
    if unit is None:
        return None
    annual = [f for f in concept.units[unit] if f.form in _ANNUAL_FORMS and f.fp == "FY"]
    annual = [f for f in annual if f.start is None or 350 <= _days(f.start, f.end) <= 380]
    if not annual:
        return None
    end = max(f.end for f in annual)
    same_end = [f for f in annual if f.end == end]
    latest = max(same_end, key=lambda f: f.filed)  # a restatement wins
    original = min(same_end, key=lambda f: f.filed)  # its fiscal year names the period
    return unit, latest, original.fy


def _currency(unit: str) -> str | None:
    """``USD`` of ``USD`` or ``USD/shares``; nothing for ``shares`` or ``pure``."""
    code = unit.split("/")[0]
    return code if len(code) == 3 and code.isalpha() and code.isupper() else None


def _days(start: str, end: str) -> int:
    try:
        return (date.fromisoformat(end) - date.fromisoformat(start)).days
    except ValueError:
        raise MalformedResponseError(f"edgar: bad fact period {start!r}..{end!r}") from None


def _filing(
    company: str, cik: int, symbol: str, accession: str, filed: str, report: str,
    accepted: str, form: str, document: str, description: str, items: str,
) -> NewsItem:  # fmt: skip
    try:
        when = datetime.fromisoformat(accepted)
        published = to_ns(when if when.tzinfo else when.replace(tzinfo=UTC))
    except ValueError:
        raise MalformedResponseError(f"edgar: bad acceptanceDateTime {accepted!r}") from None
    headline = f"{company}: {form} filed {filed}" + (f" for {report}" if report else "")
    summary = "; ".join(part for part in (description, f"items {items}" if items else "") if part)
    return NewsItem(
        headline=headline,
        published_ns=published,
        symbols=[symbol],
        url=f"{ARCHIVES_URL}/{cik}/{accession.replace('-', '')}/{document}" if document else None,
        summary=summary or None,
    )
