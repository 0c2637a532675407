"""The exceptions starmesh raises. Every one says what went wrong and, where it can, what to do."""

from __future__ import annotations

__all__ = [
    "BusUnavailableError",
    "ConfigurationError",
    "FencedError",
    "HandlerError",
    "HubStandbyError",
    "InvalidRequestError",
    "InvalidTopicError",
    "MalformedResponseError",
    "MarketDataError",
    "MarketDataTimeout",
    "MessageBusError",
    "MessageDecodeError",
    "MessageEncodeError",
    "NoResponderError",
    "NotHandledError",
    "RemoteError",
    "RequestTimeout",
    "SourceNotConfiguredError",
    "SourceThrottledError",
    "SourceUnauthorizedError",
    "SourceUnavailableError",
    "StarmeshError",
    "UnknownSymbolError",
    "UnsupportedDataTypeError",
    "market_data_error",
]


class StarmeshError(Exception):
    """Base class of every starmesh error."""


class ConfigurationError(StarmeshError, ValueError):
    """A setting or argument is invalid."""


class MessageBusError(StarmeshError):
    """Publishing, subscribing or requesting failed."""


class BusUnavailableError(MessageBusError):
    """The bus server cannot be reached (after retrying for the configured time)."""


class FencedError(MessageBusError):
    """Redis refused a write made under a lease this process no longer holds (another
    MarketData Hub took over): nothing was written."""


class MessageEncodeError(MessageBusError, ValueError):
    """A message cannot be put on the wire: unserialisable payload or over the size limit."""


class MessageDecodeError(StarmeshError, ValueError):
    """Bytes received are not a valid starmesh message."""


class RequestTimeout(MessageBusError, TimeoutError):
    """No reply arrived before the request's timeout."""


class NoResponderError(MessageBusError):
    """A request was sent to a topic that no engine serves."""


class RemoteError(MessageBusError):
    """The responder of a request failed; ``code`` and the message are the responder's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class NotHandledError(MessageBusError):
    """No handler of the receiving instance matches the message's topic.

    A transport with durable queues leaves such a message for an instance that can handle it
    (after a while, with the dead letters as the last stop); the embedded bus drops it.
    """


class HandlerError(MessageBusError):
    """One or more handlers raised while handling a message (the message will be redelivered)."""


class MarketDataError(StarmeshError):
    """Market data could not be served: bad request, unknown symbol or a source failure.

    ``code`` names the kind of failure on the wire; :func:`market_data_error` turns a code and
    message received from the hub back into the same class.
    """

    code = "market_data_error"


class MarketDataTimeout(MarketDataError, TimeoutError):
    """Market data did not arrive in time."""

    code = "timeout"


class InvalidRequestError(MarketDataError, ValueError):
    """The request itself is wrong: no symbols, an unknown data type or source, bad params."""

    code = "invalid_request"


class UnknownSymbolError(MarketDataError):
    """The source does not know the symbol."""

    code = "unknown_symbol"


class UnsupportedDataTypeError(MarketDataError):
    """The source does not serve that data type."""

    code = "unsupported_data_type"


class SourceNotConfiguredError(MarketDataError):
    """The source needs credentials or settings that are missing."""

    code = "not_configured"


class SourceUnauthorizedError(MarketDataError):
    """The provider rejected the credentials."""

    code = "unauthorized"


class SourceThrottledError(MarketDataError):
    """The provider says we are over its rate limit."""

    code = "throttled"


class SourceUnavailableError(MarketDataError):
    """The provider is down or unreachable, or its circuit breaker is open."""

    code = "unavailable"


class MalformedResponseError(MarketDataError):
    """The provider answered with something that is not the expected shape."""

    code = "malformed_response"


class HubStandbyError(MarketDataError):
    """This hub is the standby: another hub holds the lease and serves market data."""

    code = "standby"


_MARKET_DATA_ERRORS: dict[str, type[MarketDataError]] = {
    cls.code: cls
    for cls in (
        MarketDataError,
        MarketDataTimeout,
        InvalidRequestError,
        UnknownSymbolError,
        UnsupportedDataTypeError,
        SourceNotConfiguredError,
        SourceUnauthorizedError,
        SourceThrottledError,
        SourceUnavailableError,
        MalformedResponseError,
        HubStandbyError,
    )
}


def market_data_error(code: str, message: str) -> MarketDataError:
    """The error of kind ``code`` (a wire code or a class name, as sent by the hub)."""
    cls = _MARKET_DATA_ERRORS.get(code) or next(
        (c for c in _MARKET_DATA_ERRORS.values() if c.__name__ == code), MarketDataError
    )
    return cls(message)


class InvalidTopicError(MessageBusError, ValueError):
    """A topic or subscription pattern is malformed."""
