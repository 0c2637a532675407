"""``datagov``: the Data.gov dataset catalogue, through api.data.gov.

Data.gov is a catalogue: it describes the US government's datasets (BLS, BEA, Census, the
Fed, ...) and links to where each agency publishes them; it does not serve the series
themselves. What a trading platform wants from it is to know when a dataset it depends on
changes. So the source reads the catalogue's CKAN API as api.data.gov serves it,
``https://api.gsa.gov/technology/datagov/v3/action/...`` with the key in the ``X-Api-Key``
header, and answers ``news``: a :class:`NewsFeed` of datasets, most recently modified first,
each with its title, publisher, description and catalogue URL.

- A symbol is a catalogue search (``consumer price index``; CKAN/Solr syntax allowed) ->
  ``package_search?q=...&sort=metadata_modified desc``. Params: ``organization`` (a
  publisher's catalogue name, e.g. ``bls-gov``), ``rows`` (default 20). No match is an
  empty feed, not an error.
- ``dataset:<name or id>`` watches one dataset -> ``package_show?id=...``: a one-item feed
  whose date is the dataset's last modification (an unknown dataset is an unknown symbol).

api.data.gov allows 1,000 requests an hour per key (``DEMO_KEY``: 30 an hour) and reports
what is left in ``X-RateLimit-Remaining`` on every answer. The source reads it: once it
reaches 0, fetches fail fast as throttled (for ``quota_pause_s`` of the clock) instead of
spending requests on certain 429s, and ``status().detail`` shows the last value seen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Unpack

import httpx
import msgspec

from starmesh.core.clock import Clock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import InvalidRequestError, MalformedResponseError, SourceThrottledError
from starmesh.core.payloads import MarketData, NewsFeed, NewsItem
from starmesh.marketdata.source import DataRequest, RateLimit
from starmesh.marketdata.sources.credentials import credential
from starmesh.marketdata.sources.http import (
    HttpOptions,
    HttpSource,
)
from starmesh.marketdata.sources.params import positive_int_param, to_ns

__all__ = ["DEFAULT_RATE_LIMIT", "DataGovSource"]

DEFAULT_RATE_LIMIT: Final = RateLimit(1_000, 3_600)
BASE_URL: Final = "https://api.gsa.gov/technology/datagov/v3"
MISSING: Final = "set STARMESH_DATAGOV_KEY (free key: https://api.data.gov/signup; or DEMO_KEY)"
CATALOG_URL: Final = "https://catalog.data.gov/dataset"
_DATASET_PREFIX: Final = "dataset:"
_SUMMARY_CHARS: Final = 500


class _Organization(msgspec.Struct, frozen=True):
    name: str = ""
    title: str = ""


class _Package(msgspec.Struct, frozen=True):
    name: str
    title: str
    metadata_modified: str
    notes: str | None = None
    organization: _Organization | None = None


class _SearchResult(msgspec.Struct, frozen=True):
    count: int
    results: list[_Package]


class _Search(msgspec.Struct, frozen=True):
    success: bool
    result: _SearchResult


class _Show(msgspec.Struct, frozen=True):
    success: bool
    result: _Package


class DataGovSource(HttpSource):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        quota_pause_s: float = 60.0,
        **options: Unpack[HttpOptions],
    ) -> None:
        key = credential("header", "X-Api-Key", settings.datagov_key)
        super().__init__(
            name="datagov",
            data_types=(DataType.NEWS,),
            clock=clock,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            default_base_url=BASE_URL,
            credentials=key,
            missing=MISSING,
            # A 429 from api.data.gov means the hour's quota is spent: retrying cannot help.
            retry_statuses=(500, 502, 503, 504),
            event_hooks={"response": [self._read_quota]},
            **options,
        )
        self._quota_pause_s = quota_pause_s
        self._remaining: int | None = None
        self._limit: str | None = None
        self._exhausted_at: float | None = None

    @property
    def remaining(self) -> int | None:
        """The last ``X-RateLimit-Remaining`` api.data.gov sent, if any."""
        return self._remaining

    def _detail(self) -> str:
        if self._remaining is None:
            return "X-RateLimit-Remaining: not seen yet"
        of = f" of {self._limit}" if self._limit else ""
        return f"X-RateLimit-Remaining: {self._remaining}{of}"

    async def _read_quota(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-RateLimit-Remaining", "")
        if remaining.isdigit():
            self._remaining = int(remaining)
            self._limit = response.headers.get("X-RateLimit-Limit", self._limit)
        if response.status_code == 429:
            self._remaining = 0
        if self._remaining == 0:
            self._exhausted_at = self._clock.monotonic()

    async def fetch(self, request: DataRequest) -> MarketData:
        self._check(request)
        self._check_quota()
        if request.symbol.startswith(_DATASET_PREFIX):
            dataset = request.symbol.removeprefix(_DATASET_PREFIX).strip()
            if not dataset:
                raise InvalidRequestError("datagov: dataset: needs a dataset name or id")
            response = await self._get("/action/package_show", {"id": dataset})
            shown = self._convert(self._json(response), _Show, "package_show answer")
            _require_success(shown.success)
            packages = [shown.result]
        else:
            if not request.symbol.strip():
                raise InvalidRequestError("datagov: the symbol must be a catalogue search")
            rows = positive_int_param(request, "rows", 20, 1_000) or 20
            params = {"q": request.symbol, "sort": "metadata_modified desc", "rows": str(rows)}
            organization = request.param("organization")
            if organization:
                params["fq"] = f'organization:"{organization}"'
            response = await self._get("/action/package_search", params)
            found = self._convert(self._json(response), _Search, "package_search answer")
            _require_success(found.success)
            packages = found.result.results
        items = sorted(map(_item, packages), key=lambda item: item.published_ns, reverse=True)
        return NewsFeed(symbol=request.symbol, items=items)

    def _check_quota(self) -> None:
        if self._remaining != 0 or self._exhausted_at is None:
            return
        left = self._exhausted_at + self._quota_pause_s - self._clock.monotonic()
        if left > 0:
            raise SourceThrottledError(
                f"datagov: the api.data.gov quota is spent (X-RateLimit-Remaining: 0); "
                f"not asking again for {left:.0f} s"
            )


def _require_success(success: bool) -> None:
    if not success:
        raise MalformedResponseError("datagov: the catalogue answered success=false")


def _item(package: _Package) -> NewsItem:
    try:
        modified = datetime.fromisoformat(package.metadata_modified)
    except ValueError:
        raise MalformedResponseError(
            f"datagov: bad metadata_modified {package.metadata_modified!r}"
        ) from None
    publisher = package.organization.title if package.organization else ""
    notes = " ".join((package.notes or "").split())
    return NewsItem(
        headline=f"{package.title} ({publisher})" if publisher else package.title,
        published_ns=to_ns(modified if modified.tzinfo else modified.replace(tzinfo=UTC)),
        symbols=[package.name],
        url=f"{CATALOG_URL}/{package.name}",
        summary=notes[:_SUMMARY_CHARS] or None,
    )
