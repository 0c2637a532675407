"""The foundation: messages, codec, topics, ids, clock, errors, settings. Imports no other layer."""

from starmesh.core.codec import DEFAULT_MAX_MESSAGE_BYTES, MessageCodec
from starmesh.core.enums import DataType, EngineType, MessagePriority, MessageType
from starmesh.core.errors import (
    ConfigurationError,
    HandlerError,
    InvalidTopicError,
    MarketDataError,
    MarketDataTimeout,
    MessageBusError,
    MessageDecodeError,
    MessageEncodeError,
    NoResponderError,
    RemoteError,
    RequestTimeout,
    StarmeshError,
)
from starmesh.core.message import Message

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ConfigurationError",
    "DataType",
    "EngineType",
    "HandlerError",
    "InvalidTopicError",
    "MarketDataError",
    "MarketDataTimeout",
    "Message",
    "MessageBusError",
    "MessageCodec",
    "MessageDecodeError",
    "MessageEncodeError",
    "MessagePriority",
    "MessageType",
    "NoResponderError",
    "RemoteError",
    "RequestTimeout",
    "StarmeshError",
]
