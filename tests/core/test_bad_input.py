"""Bad input on the wire: every kind is a MessageDecodeError with the reason, never a crash.

A consumer loop catches exactly that error (dead-letters the entry, counts it, goes on), so
anything else escaping the codec would kill the loop: the deep-nesting case did before
(RecursionError).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from starmesh.core.codec import MessageCodec
from starmesh.core.errors import InvalidTopicError, MessageDecodeError, MessageEncodeError
from starmesh.core.topics import TopicMatcher, validate_topic
from tests.core.test_codec import envelope, wire

codec = MessageCodec()
GOOD = codec.encode(envelope({"x": 1}))
WIRE_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
"""What msgpack can carry."""
FIELDS = ["id", "topic", "type", "source", "instance", "priority", "ts_event", "ts_publish",
          "payload", "correlation_id", "reply_to", "deadline_ns"]  # fmt: skip
garbage = st.one_of(
    st.none(), st.booleans(), WIRE_INTS, st.floats(), st.text(max_size=20),
    st.binary(max_size=20), st.lists(WIRE_INTS, max_size=3),
    st.dictionaries(st.text(max_size=5), WIRE_INTS, max_size=3),
)  # fmt: skip


def decodes_or_says_why(data: bytes) -> None:
    """Either a message, or a MessageDecodeError with a reason: nothing else may escape."""
    reason = ""
    try:
        codec.decode(data)
    except MessageDecodeError as exc:
        reason = str(exc) or "(empty)"
    assert reason != "(empty)"


@given(cut=st.integers(min_value=0, max_value=len(GOOD) - 1))
def test_every_truncation_of_a_message_is_a_decode_error(cut: int) -> None:
    with pytest.raises(MessageDecodeError):
        codec.decode(GOOD[:cut])


@given(field=st.sampled_from(FIELDS), value=garbage)
def test_any_field_of_any_wrong_type_is_a_decode_error_or_decodes(field: str, value: Any) -> None:
    decodes_or_says_why(wire(**{field: value}))


@given(field=st.sampled_from(["type", "source"]), value=st.text(max_size=30))
def test_unknown_enum_values_are_rejected(field: str, value: str) -> None:
    known = {"event", "risk_alert", "risk", "strategy"}
    if value in known:
        return
    decodes_or_says_why(wire(**{field: value}))


@given(priority=WIRE_INTS.filter(lambda p: not 1 <= p <= 5))
def test_unknown_priorities_are_rejected(priority: int) -> None:
    with pytest.raises(MessageDecodeError):
        codec.decode(wire(priority=priority))


@given(
    field=st.sampled_from(["ts_event", "ts_publish", "deadline_ns"]),
    value=st.one_of(
        st.integers(min_value=-(2**63), max_value=-1),
        st.integers(min_value=2**63, max_value=2**64 - 1),
    ),
)
def test_timestamps_out_of_range_are_rejected(field: str, value: int) -> None:
    with pytest.raises(MessageDecodeError):
        codec.decode(wire(**{field: value}))


@pytest.mark.parametrize("field", ["id", "topic", "instance", "reply_to"])
def test_huge_strings_in_the_envelope_are_rejected(field: str) -> None:
    with pytest.raises(MessageDecodeError, match="length"):
        codec.decode(wire(**{field: "x" * 10_000}))


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deep_nesting_is_a_decode_error_not_a_crash(depth: int) -> None:
    """Before: 10,000 levels raised RecursionError out of the codec."""
    head = msgspec.msgpack.encode({**msgspec.to_builtins(envelope({})), "payload": {}})[:-1]
    data = head + b"\x81\xa1a" * depth + b"\x80"
    decodes_or_says_why(data)


def test_a_payload_nested_too_deeply_to_encode_is_an_encode_error() -> None:
    deep: dict[str, Any] = {}
    level = deep
    for _ in range(10_000):
        level["a"] = {}
        level = level["a"]
    with pytest.raises(MessageEncodeError):
        codec.encode(envelope(deep))


@given(price=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_nan_and_infinite_prices_are_rejected(price: float) -> None:
    quote = {"_type": "quote", "symbol": "AAPL", "bid": price, "ask": 1.0,
             "bid_size": 1.0, "ask_size": 1.0}  # fmt: skip
    with pytest.raises(MessageDecodeError, match="invalid payload"):
        codec.decode(wire(payload=quote))


@given(size=st.floats(max_value=-1e-9, allow_nan=False) | st.just(math.inf))
def test_negative_or_infinite_sizes_are_rejected(size: float) -> None:
    trade = {"_type": "trade", "symbol": "AAPL", "price": 1.0, "size": size}
    with pytest.raises(MessageDecodeError, match="invalid payload"):
        codec.decode(wire(payload=trade))


# --- topics -----------------------------------------------------------------------------------

topic_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="ab.*?[]!^-\\ \t\x00", max_size=20),
    st.just("a" * 10_240),
    st.just(""),
)


@given(topic=topic_text)
def test_any_text_is_a_valid_topic_or_an_invalid_topic_error(topic: str) -> None:
    try:
        valid = validate_topic(topic)
    except InvalidTopicError:
        return
    assert valid == topic
    assert 0 < len(topic) <= 512
    assert not set(topic) & set("*?[]")


@given(pattern=topic_text)
def test_any_text_is_a_valid_pattern_or_an_invalid_topic_error(pattern: str) -> None:
    matcher: TopicMatcher[int] = TopicMatcher()
    try:
        matcher.add(pattern, 1)
    except InvalidTopicError:
        return
    matcher.match("a.b")  # a valid pattern never breaks matching, metacharacters included
