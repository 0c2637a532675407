"""What the HTTP sources share: one client each, credentials out of sight, retries, error kinds.

:class:`HttpSource` is the base of every HTTP adapter. It holds the source's one
``httpx.AsyncClient`` (explicit timeouts, a descriptive User-Agent) for its whole life,
retries 429/5xx answers and transport failures with tenacity (honouring ``Retry-After``,
bounded in attempts and in total wait), and turns every failure into a ``MarketDataError``
subclass carrying the provider's own message. Credentials never go through the client: a
:class:`CredentialTransport` adds them to a copy of each request as it leaves, so what
httpx logs (every URL, query string included, at INFO on ``httpx``), keeps on responses and
attaches to exceptions has no key. Errors are raised outside ``except`` blocks, so no httpx
exception is chained to them, and provider text is scrubbed of keys before it is quoted.
The small parsing helpers every adapter uses (parameters, numbers, times) close the module.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC
from typing import Any, Final, TypedDict, TypeVar, Unpack

import httpx
import msgspec
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from starmesh.__about__ import __version__
from starmesh.core.clock import Clock
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    MarketDataError,
    SourceNotConfiguredError,
    SourceThrottledError,
    SourceUnauthorizedError,
    SourceUnavailableError,
    UnknownSymbolError,
    UnsupportedDataTypeError,
)
from starmesh.marketdata.budget import remaining
from starmesh.marketdata.source import DataRequest, RateLimit, SourceStatus
from starmesh.marketdata.sources.credentials import Credential, CredentialTransport, scrub

__all__ = [
    "DEFAULT_TIMEOUT", "RETRY_STATUSES", "USER_AGENT", "HttpOptions", "HttpSource",
    "RetryPolicy", "Sleep", "provider_message", "retry_after_seconds", "status_error",
]  # fmt: skip

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
"""What the retries wait with: ``asyncio.sleep`` in production, a recorder in tests."""

USER_AGENT: Final = f"starmesh/{__version__} (market-data hub; python-httpx/{httpx.__version__})"
DEFAULT_TIMEOUT: Final = httpx.Timeout(15.0, connect=5.0)
"""Seconds to connect, then to read, write or wait for a pooled connection."""
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

logger = logging.getLogger("starmesh.marketdata.sources")


class RetryPolicy(msgspec.Struct, frozen=True):
    """How hard a source tries before it reports a failure to the hub.

    Waits double from ``backoff_s`` up to ``max_backoff_s``, or are what the provider's
    ``Retry-After`` asks for. The source gives up after ``attempts`` tries, or at once when
    the next wait would take the total beyond ``max_total_wait_s``: the hub's breaker and
    cache deal with a longer outage better than a request that hangs.
    """

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_total_wait_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))


# --- reading a provider's answer ---------------------------------------------------------------

_MESSAGE_KEYS: Final = (
    "error_message", "message", "Message", "description", "Error Message", "Information",
    "Note", "detail",
)  # fmt: skip
_NESTED_KEYS: Final = ("error", "errors", "chart", "finance")
_HTML_MESSAGE: Final = (
    re.compile(r"<h1[^>]*>(.*?)</h1>", re.S | re.I),
    re.compile(r"<Message>(.*?)</Message>", re.S),
    re.compile(r"<title[^>]*>(.*?)</title>", re.S | re.I),
)


def _find_message(data: object) -> str | None:
    if isinstance(data, str):
        return data or None
    if isinstance(data, list):
        return next((m for m in map(_find_message, data) if m), None)
    if isinstance(data, dict):
        for key in _MESSAGE_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
        for key in _NESTED_KEYS:
            found = _find_message(data.get(key))
            if found:
                return found
    return None


def _squash(text: str, limit: int = 400) -> str:
    text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provider_message(response: httpx.Response) -> str:
    """The provider's own explanation in an error answer, whatever its format."""
    text = response.text
    try:
        found = _find_message(msgspec.json.decode(text))
    except msgspec.DecodeError:
        found = None
    if found is None and text.lstrip().startswith("<"):
        for pattern in _HTML_MESSAGE:
            match = pattern.search(text)
            if match and match.group(1).strip():
                found = match.group(1)
                break
    return _squash(found or text) or response.reason_phrase or f"HTTP {response.status_code}"


_STATUS_ERRORS: Final[dict[int, type[MarketDataError]]] = {
    429: SourceThrottledError, 401: SourceUnauthorizedError, 403: SourceUnauthorizedError,
    404: UnknownSymbolError, 410: UnknownSymbolError, 400: InvalidRequestError,
    405: InvalidRequestError, 409: InvalidRequestError, 422: InvalidRequestError,
}  # fmt: skip


def status_error(status: int, message: str) -> MarketDataError:
    """The error an HTTP status means when the provider says nothing more specific."""
    default = SourceUnavailableError if status >= 500 else MalformedResponseError
    return _STATUS_ERRORS.get(status, default)(message)


def retry_after_seconds(value: str | None, now_ns: int) -> float | None:
    """``Retry-After`` as seconds from now: it is either seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_ns / 1e9)


class _Retry(Exception):
    """An attempt that may succeed if tried again; ``error`` is what to report if not."""

    def __init__(self, summary: str, error: MarketDataError, retry_after: float | None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.error = error
        self.retry_after = retry_after


# --- the base of the HTTP adapters -----------------------------------------------------------


class HttpOptions(TypedDict, total=False):
    """What a caller may set on any HTTP source (every adapter takes these as keywords): its
    limit, how it retries and waits (tests pass a recording ``sleep``), where it connects.
    """

    rate_limit: RateLimit
    sleep: Sleep
    retry: RetryPolicy
    transport: httpx.AsyncBaseTransport
    base_url: str


class HttpSource:
    """One provider over HTTP: its client, its limit, its credentials and its errors.

    Subclasses implement ``fetch``; they call :meth:`_check` first, :meth:`_get` for each
    request and :meth:`_json` / :meth:`_convert` to read the answer, and may override
    :meth:`_classify` for what the provider's error statuses mean.
    """

    def __init__(
        self, *, name: str, data_types: Collection[DataType], clock: Clock,
        default_rate_limit: RateLimit, default_base_url: str = "",
        headers: Mapping[str, str] | None = None, credentials: Sequence[Credential] = (),
        missing: str | None = None, retry_statuses: Collection[int] = RETRY_STATUSES,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        **options: Unpack[HttpOptions],
    ) -> None:  # fmt: skip
        """The ``default_*`` values are the adapter's own; ``options`` are the caller's.
        ``missing`` says what to set when the source lacks its credentials (none were given).
        """
        self._name = name
        self._data_types = frozenset(data_types)
        self._rate_limit = options.get("rate_limit", default_rate_limit)
        self._clock = clock
        self._missing = None if credentials else missing
        self._sleep = options.get("sleep", asyncio.sleep)
        self._retry = options.get("retry", RetryPolicy())
        base_url = options.get("base_url", default_base_url)
        transport = options.get("transport")
        self._retry_statuses = frozenset(retry_statuses)
        self._timeout = timeout
        self._secrets = [c.value.get_secret_value() for c in credentials]
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            timeout=timeout,
            transport=CredentialTransport(transport or httpx.AsyncHTTPTransport(), credentials),
            event_hooks=dict(event_hooks or {}),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} {self.status().state}>"

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
        connections = 0 if self._client.is_closed else 1
        if self._missing is not None:
            return SourceStatus(self._name, "unconfigured", self._missing, connections)
        return SourceStatus(self._name, "configured", self._detail(), connections)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _detail(self) -> str:
        """What ``status()`` says about a configured source."""
        return str(self._client.base_url or "")

    def _check(self, request: DataRequest) -> None:
        """Refuse a request this source cannot serve before anything goes on the wire."""
        if self._missing is not None:
            raise SourceNotConfiguredError(f"{self._name} is not configured: {self._missing}")
        if request.data_type not in self._data_types:
            served = ", ".join(sorted(t.value for t in self._data_types))
            raise UnsupportedDataTypeError(
                f"{self._name} serves {served}, not {request.data_type.value}"
            )

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _where(self, response: httpx.Response) -> str:
        url = response.request.url
        return url.raw_path.decode("ascii", "replace") if url else "?"

    def _classify(self, response: httpx.Response, message: str) -> MarketDataError:
        """The error an unsuccessful answer means; by default, what its status means."""
        return status_error(response.status_code, message)

    def _describe(self, response: httpx.Response) -> str:
        message = self._scrub(provider_message(response))
        return f"{self._name}: {message} (HTTP {response.status_code} from {self._where(response)})"

    async def _get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A successful answer to GET ``url``, after retries; otherwise its error."""
        retrying = AsyncRetrying(
            sleep=self._sleep, stop=self._should_stop, wait=self._delay, reraise=True,
            retry=retry_if_exception_type(_Retry), before_sleep=self._log_retry,
        )  # fmt: skip
        error: MarketDataError
        try:
            response: httpx.Response = await retrying(self._attempt, url, params, headers)
        except _Retry as last:
            error = last.error
        else:
            if response.is_success:
                return response
            error = self._classify(response, self._describe(response))
        raise error

    async def _attempt(
        self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        failure: _Retry | MarketDataError
        # Never wait on the wire longer than the hub's caller still waits (see budget.py).
        timeout = self._timeout
        left = remaining(float("inf"))
        if left < float("inf"):
            timeout = httpx.Timeout(
                min(timeout.read or left, left), connect=min(timeout.connect or left, left)
            )
        try:
            response = await self._client.get(url, params=params, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            reason = self._scrub(str(exc)) or type(exc).__name__
            summary = f"{type(exc).__name__}: {reason}"
            error = SourceUnavailableError(f"{self._name}: cannot get {url}: {summary}")
            failure = _Retry(summary, error, None)
        except httpx.RequestError as exc:  # undecodable body, redirect loop: not worth retrying
            failure = MalformedResponseError(
                f"{self._name}: {type(exc).__name__}: {self._scrub(str(exc))}"
            )
        else:
            if response.status_code not in self._retry_statuses:
                return response
            wait = retry_after_seconds(response.headers.get("Retry-After"), self._clock.now_ns())
            message = self._describe(response)
            if wait is not None:
                message += f"; asked to retry after {wait:g} s"
            failure = _Retry(
                f"HTTP {response.status_code} from {self._where(response)}",
                self._classify(response, message),
                wait,
            )
        raise failure

    def _delay(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Retry) and failure.retry_after is not None:
            return failure.retry_after
        return self._retry.backoff(state.attempt_number)

    def _should_stop(self, state: RetryCallState) -> bool:
        policy = self._retry
        return (
            state.attempt_number >= policy.attempts
            or state.idle_for + state.upcoming_sleep > policy.max_total_wait_s
            # The wait would outlast the hub's caller: report the failure now instead.
            or state.upcoming_sleep >= remaining(float("inf"))
        )

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        summary = failure.summary if isinstance(failure, _Retry) else "failure"
        logger.warning(
            "%s: %s; retrying in %.2f s (attempt %d of %d)", self._name, summary,
            state.upcoming_sleep, state.attempt_number + 1, self._retry.attempts,
        )  # fmt: skip

    def _json(self, response: httpx.Response) -> Any:
        """The answer's JSON; anything else is a malformed response."""
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            kind = response.headers.get("Content-Type", "no content type")
            snippet = self._scrub(_squash(response.text, 120))
            error = MalformedResponseError(
                f"{self._name}: expected JSON from {self._where(response)}, got {kind}: {snippet!r}"
            )
        raise error

    def _convert(self, data: object, kind: type[T], what: str) -> T:
        """``data`` as ``kind``, or a malformed-response error saying where it differs."""
        try:
            return msgspec.convert(data, kind)
        except msgspec.ValidationError as exc:
            reason = self._scrub(str(exc))
        raise MalformedResponseError(f"{self._name}: unexpected {what}: {reason}")
