"""The exceptions starmesh raises. Every one says what went wrong and, where it can, what to do."""

from __future__ import annotations

__all__ = [
    "BusUnavailableError",
    "ConfigurationError",
    "HandlerError",
    "InvalidTopicError",
    "MarketDataError",
    "MarketDataTimeout",
    "MessageBusError",
    "MessageDecodeError",
    "MessageEncodeError",
    "NoResponderError",
    "NotHandledError",
    "RemoteError",
    "RequestTimeout",
    "StarmeshError",
]


class StarmeshError(Exception):
    """Base class of every starmesh error."""


class ConfigurationError(StarmeshError, ValueError):
    """A setting or argument is invalid."""


class MessageBusError(StarmeshError):
    """Publishing, subscribing or requesting failed."""


class BusUnavailableError(MessageBusError):
    """The bus server cannot be reached (after retrying for the configured time)."""


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
    """Market data could not be served: bad request, unknown symbol or a source failure."""


class MarketDataTimeout(MarketDataError, TimeoutError):
    """Market data did not arrive in time."""


class InvalidTopicError(MessageBusError, ValueError):
    """A topic or subscription pattern is malformed."""
