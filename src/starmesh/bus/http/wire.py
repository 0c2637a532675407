"""Messages in an HTTP body: the documented wire format (docs/wire-format.md), as msgpack or
JSON, one message (a map) or several in order (an array of maps).

JSON carries the same map: a typed payload keeps its ``_type`` key, so the receiver rebuilds
the same class. It is converted to msgpack and decoded by the one strict codec, so both
encodings accept and reject exactly the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from starmesh.core.codec import MessageCodec
from starmesh.core.errors import MessageDecodeError
from starmesh.core.message import Message

__all__ = [
    "JSON",
    "MAX_BATCH",
    "MESSAGES_PATH",
    "MSGPACK",
    "UnsupportedMediaType",
    "decode_body",
    "encode_body",
]

MESSAGES_PATH: Final = "/v1/messages"
MSGPACK: Final = "application/msgpack"
JSON: Final = "application/json"
_MSGPACK_TYPES: Final = frozenset({MSGPACK, "application/x-msgpack", "application/vnd.msgpack"})
MAX_BATCH: Final = 1_000
"""Messages one request may carry."""

_any_json: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Any)
_encoder = msgspec.msgpack.Encoder()
_raw_list = msgspec.msgpack.Decoder(list[msgspec.Raw])


class UnsupportedMediaType(MessageDecodeError):
    """The body is neither msgpack nor JSON."""


def decode_body(body: bytes, content_type: str, codec: MessageCodec) -> list[Message]:
    """The messages of a request body, in order; MessageDecodeError says what is wrong."""
    media = content_type.partition(";")[0].strip().lower()
    if media in _MSGPACK_TYPES:
        return _decode_msgpack(body, codec)
    if media == JSON:
        try:
            tree = _any_json.decode(body)
            items = tree if isinstance(tree, list) else [tree]
            _check_count(len(items))
            encoded = [_encoder.encode(item) for item in items]
        except msgspec.DecodeError as exc:
            raise MessageDecodeError(f"not JSON: {exc}") from None
        except RecursionError:
            raise MessageDecodeError("JSON nested too deeply") from None
        except (OverflowError, TypeError, ValueError) as exc:  # e.g. an integer past 64 bits
            raise MessageDecodeError(f"not a message in JSON: {exc}") from None
        return [codec.decode(data) for data in encoded]
    raise UnsupportedMediaType(f"content type {content_type!r}: send {MSGPACK} or {JSON}")


def _decode_msgpack(body: bytes, codec: MessageCodec) -> list[Message]:
    if not body:
        raise MessageDecodeError("empty body")
    first = body[0]
    # A msgpack array starts 0x90-0x9f, 0xdc or 0xdd; anything else is taken as one message.
    if 0x90 <= first <= 0x9F or first in (0xDC, 0xDD):
        try:
            raws = _raw_list.decode(body)
        except msgspec.DecodeError as exc:
            raise MessageDecodeError(f"not a msgpack array of messages: {exc}") from None
        except RecursionError:
            raise MessageDecodeError("msgpack nested too deeply") from None
        _check_count(len(raws))
        return [codec.decode(bytes(raw)) for raw in raws]
    return [codec.decode(body)]


def _check_count(count: int) -> None:
    if count == 0:
        raise MessageDecodeError("no message in the body")
    if count > MAX_BATCH:
        raise MessageDecodeError(f"{count:,} messages in one body; the limit is {MAX_BATCH:,}")


def encode_body(messages: Sequence[bytes]) -> bytes:
    """Already-encoded messages as one msgpack array (each is a msgpack map)."""
    count = len(messages)
    head = bytes([0x90 | count]) if count < 16 else b"\xdc" + count.to_bytes(2, "big")
    return head + b"".join(messages)
