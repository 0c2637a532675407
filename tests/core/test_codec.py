from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from starmesh import EngineType, Message, MessagePriority, MessageType
from starmesh.core.codec import DEFAULT_MAX_MESSAGE_BYTES, MessageCodec
from starmesh.core.errors import MessageDecodeError, MessageEncodeError
from starmesh.core.payloads import PAYLOAD_TYPES, Payload
from tests.samples import sample_payloads


def envelope(payload: Any, **overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "id": "18eb9c1d2355e63fd4c2978600000002",
        "topic": "risk.alert.var",
        "type": MessageType.RISK_ALERT,
        "source": EngineType.RISK,
        "instance": "risk-1",
        "priority": MessagePriority.URGENT,
        "ts_event": 1_795_000_000_000_000_000,
        "ts_publish": 1_795_000_000_000_000_001,
        "payload": payload,
    }
    fields.update(overrides)
    return Message(**fields)


def wire(**fields: Any) -> bytes:
    base = msgspec.to_builtins(envelope({"x": 1}))
    base.update(fields)
    return msgspec.msgpack.encode(base)


codec = MessageCodec()


def test_samples_cover_every_payload_type() -> None:
    assert {type(p) for p in sample_payloads()} == set(PAYLOAD_TYPES)


@pytest.mark.parametrize("payload", sample_payloads(), ids=lambda p: type(p).__name__)
def test_typed_payloads_round_trip_as_their_own_class(payload: Payload) -> None:
    message = envelope(payload, correlation_id="c", reply_to="risk/r1", deadline_ns=5)
    decoded = codec.decode(codec.encode(message))
    assert decoded == message
    assert type(decoded.payload) is type(payload)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(payload=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_dict_payloads_round_trip(payload: dict[str, Any]) -> None:
    payload.pop("_type", None)
    assert codec.decode(codec.encode(envelope(payload))).payload == payload


def test_the_envelope_is_a_msgpack_map_keyed_by_field_name() -> None:
    raw = msgspec.msgpack.decode(codec.encode(envelope({"symbol": "AAPL"})))
    assert raw["topic"] == "risk.alert.var"
    assert raw["source"] == "risk"
    assert raw["type"] == "risk_alert"
    assert raw["priority"] == 4
    assert raw["payload"] == {"symbol": "AAPL"}


def test_a_foreign_client_sends_a_typed_payload_by_its_tag() -> None:
    data = wire(
        payload={"_type": "quote", "symbol": "X", "bid": 1, "ask": 2, "bid_size": 1, "ask_size": 1}
    )
    payload = codec.decode(data).payload
    assert payload.__class__.__name__ == "Quote"
    assert payload.mid == 1.5


def test_an_unknown_tag_is_kept_as_a_map() -> None:
    assert codec.decode(wire(payload={"_type": "future_thing", "a": 1})).payload == {
        "_type": "future_thing",
        "a": 1,
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "not a starmesh message"),
        (b"", "not a starmesh message"),
        (msgspec.msgpack.encode([1, 2, 3]), "not a starmesh message"),
        (msgspec.msgpack.encode({"topic": "a"}), "missing required field"),
        (wire(priority=9), "priority"),
        (wire(priority="high"), "priority"),
        (wire(source="nope"), "source"),
        (wire(ts_publish="yesterday"), "ts_publish"),
        (wire(payload=[1, 2]), "invalid payload"),
        (
            wire(
                payload={
                    "_type": "quote",
                    "symbol": "X",
                    "bid": "cheap",
                    "ask": 1,
                    "bid_size": 1,
                    "ask_size": 1,
                }
            ),
            "invalid payload",
        ),
        (
            wire(
                payload={
                    "_type": "quote",
                    "symbol": "X",
                    "bid": 1,
                    "ask": 1,
                    "bid_size": -5,
                    "ask_size": 1,
                }
            ),
            "bid_size",
        ),
    ],
)
def test_malformed_input_raises_a_decode_error_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MessageDecodeError, match=reason):
        codec.decode(data)


def test_oversized_input_is_rejected_before_parsing() -> None:
    small = MessageCodec(max_bytes=100)
    with pytest.raises(MessageDecodeError, match="exceeds the 100-byte limit"):
        small.decode(b"\x00" * 101)


@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_a_decode_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except MessageDecodeError:
        pass


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"when": object()}, "cannot be serialised"),
        ([1, 2], "is a list"),
        ({"blob": "x" * 2_000}, "over the 1,000-byte limit"),
    ],
)
def test_unencodable_messages_raise_with_what_to_do(payload: Any, reason: str) -> None:
    small = MessageCodec(max_bytes=1_000)
    with pytest.raises(MessageEncodeError, match=reason):
        small.encode(envelope(payload))
    with pytest.raises(MessageEncodeError, match=reason):
        small.validate(envelope(payload))


@pytest.mark.parametrize("below_limit", range(-40, 400, 11))
def test_validate_agrees_with_encode_at_the_size_limit(below_limit: int) -> None:
    message = envelope({"blob": "x" * (DEFAULT_MAX_MESSAGE_BYTES - below_limit)})
    try:
        codec.encode(message)
    except MessageEncodeError:
        with pytest.raises(MessageEncodeError):
            codec.validate(message)
    else:
        codec.validate(message)


def test_message_expiry() -> None:
    assert envelope({}, deadline_ns=10).expired(11)
    assert not envelope({}, deadline_ns=10).expired(10)
    assert not envelope({}).expired(10**20)
