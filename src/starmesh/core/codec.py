"""Message <-> bytes. msgpack, the envelope as a map keyed by field name (see docs/wire-format.md).

Decoding is strict: anything that is not a well-formed envelope, or is larger than the limit,
raises :class:`MessageDecodeError` with the reason, before any handler sees it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Union

import msgspec

from starmesh.core.enums import EngineType, MessagePriority, MessageType
from starmesh.core.errors import MessageDecodeError, MessageEncodeError
from starmesh.core.message import Message
from starmesh.core.payloads import PAYLOAD_TYPES, Payload

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "MessageCodec"]

DEFAULT_MAX_MESSAGE_BYTES: Final = 1024 * 1024
_ENVELOPE_HEADROOM: Final = 4096
"""More than the envelope fields other than the payload can take (topics are <= 512 chars)."""


_Nanos = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
"""A UNIX-nanosecond time: not negative, and fits the signed 64 bits every client uses."""
_Text = Annotated[str, msgspec.Meta(max_length=512)]
"""Ids, topics, instance names and addresses: short by design (topics are <= 512)."""


class _WireMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The envelope as decoded off the wire, its payload still undecoded."""

    id: _Text
    topic: _Text
    type: MessageType
    source: EngineType
    instance: _Text
    priority: MessagePriority
    ts_event: _Nanos
    ts_publish: _Nanos
    payload: msgspec.Raw
    correlation_id: _Text | None = None
    reply_to: _Text | None = None
    deadline_ns: _Nanos | None = None


class _PayloadTag(msgspec.Struct, gc=False, rename={"tag": "_type"}):
    """Reads only the ``_type`` field of a payload map; msgspec skips the rest unparsed."""

    tag: str | None = None


_typed_payload_tags: Final = frozenset(
    cls.__struct_config__.tag for cls in PAYLOAD_TYPES if isinstance(cls.__struct_config__.tag, str)
)


class MessageCodec:
    """Encodes and decodes messages; one instance is reused for every message."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._encoder = msgspec.msgpack.Encoder()
        self._envelope = msgspec.msgpack.Decoder(_WireMessage)
        self._tag = msgspec.msgpack.Decoder(_PayloadTag)
        self._typed = msgspec.msgpack.Decoder(Union[PAYLOAD_TYPES])  # noqa: UP007 - a runtime tuple
        self._map = msgspec.msgpack.Decoder(dict[str, Any])

    def encode(self, message: Message) -> bytes:
        payload = message.payload
        if type(payload) is not dict and not isinstance(payload, Payload):
            raise MessageEncodeError(
                f"payload of {message.topic!r} is a {type(payload).__name__}; "
                "send a dict or a starmesh Payload struct"
            )
        try:
            data = self._encoder.encode(message)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise MessageEncodeError(
                f"payload of {message.topic!r} cannot be serialised: {exc}. "
                "Use str/int/float/bool/None, lists, dicts with str keys, or Payload structs"
            ) from exc
        if len(data) > self.max_bytes:
            raise MessageEncodeError(
                f"message on {message.topic!r} is {len(data):,} bytes, over the "
                f"{self.max_bytes:,}-byte limit (STARMESH_MAX_MESSAGE_BYTES); "
                "send large data by reference"
            )
        return data

    def validate(self, message: Message) -> None:
        """Raise what ``encode`` would raise, cheaply: for in-process delivery of ``message``.

        Encodes only the payload (the envelope's other fields are typed and always encode);
        the exact full encoding runs only when the payload is near the size limit.
        """
        payload = message.payload
        if type(payload) is not dict and not isinstance(payload, Payload):
            self.encode(message)  # raises the explanatory error
        try:
            size = len(self._encoder.encode(payload))
        except (TypeError, ValueError, OverflowError, RecursionError):
            size = self.max_bytes  # let encode raise with the full explanation
        if size + _ENVELOPE_HEADROOM >= self.max_bytes:
            self.encode(message)

    def decode(self, data: bytes | bytearray | memoryview) -> Message:
        if len(data) > self.max_bytes:
            raise MessageDecodeError(
                f"message of {len(data):,} bytes exceeds the {self.max_bytes:,}-byte limit"
            )
        try:
            wire = self._envelope.decode(data)
        except msgspec.DecodeError as exc:
            raise MessageDecodeError(f"not a starmesh message: {exc}") from exc
        except RecursionError:  # a hostile or broken body must not kill a consumer loop
            raise MessageDecodeError("not a starmesh message: nested too deeply") from None
        return Message(
            id=wire.id,
            topic=wire.topic,
            type=wire.type,
            source=wire.source,
            instance=wire.instance,
            priority=wire.priority,
            ts_event=wire.ts_event,
            ts_publish=wire.ts_publish,
            payload=self._decode_payload(wire.payload, wire.topic),
            correlation_id=wire.correlation_id,
            reply_to=wire.reply_to,
            deadline_ns=wire.deadline_ns,
        )

    def _decode_payload(self, raw: msgspec.Raw, topic: str) -> Any:
        try:
            tag = self._tag.decode(raw).tag
            if tag is None or tag not in _typed_payload_tags:
                # Untagged, or tagged by a schema this version does not know: keep the map.
                return self._map.decode(raw)
            return self._typed.decode(raw)
        except msgspec.DecodeError as exc:
            raise MessageDecodeError(f"invalid payload on {topic!r}: {exc}") from exc
        except RecursionError:
            raise MessageDecodeError(f"invalid payload on {topic!r}: nested too deeply") from None
