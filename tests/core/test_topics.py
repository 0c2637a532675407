import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starmesh.core.errors import InvalidTopicError
from starmesh.core.topics import (
    TopicMatcher,
    literal_prefix,
    may_overlap,
    validate_pattern,
    validate_topic,
)

segment = st.text(alphabet="abcxyz019_-", min_size=1, max_size=4)
topics = st.lists(segment, min_size=1, max_size=4).map(".".join)
pattern_segment = st.text(alphabet="abcxyz019_-*?", min_size=1, max_size=4)
patterns = st.lists(pattern_segment, min_size=1, max_size=4).map(".".join)


@given(pattern=patterns, topic=topics)
def test_matcher_agrees_with_fnmatchcase(pattern: str, topic: str) -> None:
    matcher: TopicMatcher[str] = TopicMatcher()
    matcher.add(pattern, "sub")
    assert bool(matcher.match(topic)) == fnmatch.fnmatchcase(topic, pattern)


@given(subscribed=st.lists(patterns, min_size=1, max_size=8, unique=True), topic=topics)
def test_match_returns_every_matching_subscription_once(subscribed: list[str], topic: str) -> None:
    matcher: TopicMatcher[str] = TopicMatcher()
    for pattern in subscribed:
        matcher.add(pattern, pattern)
    expected = {p for p in subscribed if fnmatch.fnmatchcase(topic, p)}
    found = matcher.match(topic)
    assert set(found) == expected
    assert len(found) == len(expected)
    assert matcher.match(topic) is found  # the second lookup is the cached tuple


def test_one_value_under_several_matching_patterns_is_returned_once() -> None:
    matcher: TopicMatcher[str] = TopicMatcher()
    matcher.add("risk.*", "engine")
    matcher.add("risk.alert.var", "engine")
    matcher.add("*", "other")
    assert matcher.match("risk.alert.var") == ("engine", "other")


def test_cache_is_invalidated_by_add_and_remove() -> None:
    matcher: TopicMatcher[str] = TopicMatcher()
    assert matcher.match("risk.alert.var") == ()
    matcher.add("risk.alert.*", "a")
    assert matcher.match("risk.alert.var") == ("a",)
    assert matcher.remove("risk.alert.*", "a")
    assert matcher.match("risk.alert.var") == ()
    assert not matcher.remove("risk.alert.*", "a")
    assert len(matcher) == 0


def test_cache_is_bounded() -> None:
    matcher: TopicMatcher[str] = TopicMatcher(cache_size=10)
    matcher.add("t.*", "a")
    for i in range(100):
        assert matcher.match(f"t.{i}") == ("a",)
    assert len(matcher._cache) <= 10


def test_patterns_lists_subscriptions_in_order() -> None:
    matcher: TopicMatcher[str] = TopicMatcher()
    matcher.add("b.*", "x")
    matcher.add("a", "x")
    matcher.add("c", "y")
    assert matcher.patterns() == ["a", "c", "b.*"]
    assert matcher.patterns("x") == ["a", "b.*"]


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "empty"),
        ("risk..alert", "empty segment"),
        (".risk", "empty segment"),
        ("risk.", "empty segment"),
        ("risk alert", "whitespace"),
        ("risk.*", "wildcard"),
        ("risk.a?", "wildcard"),
        ("x" * 513, "limit"),
    ],
)
def test_invalid_topics_are_rejected_with_the_reason(topic: str, reason: str) -> None:
    with pytest.raises(InvalidTopicError, match=reason):
        validate_topic(topic)


def test_non_string_topic_is_rejected() -> None:
    with pytest.raises(InvalidTopicError, match="must be a str"):
        validate_topic(42)


def test_valid_topics_and_patterns_pass() -> None:
    assert validate_topic("marketdata.quote.BRK-B") == "marketdata.quote.BRK-B"
    assert validate_topic("marketdata.bar.^GSPC") == "marketdata.bar.^GSPC"
    assert validate_pattern("risk.alert.*") == "risk.alert.*"
    with pytest.raises(InvalidTopicError):
        validate_pattern("risk..*")


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("risk.alert.*", "risk.alert."), ("risk.?ar", "risk."), ("*", ""), ("a.[bc]", "a."),
     ("exact.topic", "exact.topic")],
)  # fmt: skip
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


@pytest.mark.parametrize(
    ("pattern", "other", "overlap"),
    [
        ("marketdata.request.get", "marketdata.quote.*", False),
        ("marketdata.request.*", "marketdata.quote.*", False),
        ("marketdata.quote.AAPL", "marketdata.quote.*", True),
        ("marketdata.*", "marketdata.quote.*", True),
        ("m*", "marketdata.trade.*", True),
        ("*", "marketdata.trade.*", True),
        ("risk.alert.*", "marketdata.quote.*", False),
        ("marketdata.q?ote.*", "marketdata.quote.*", True),
    ],
)
def test_may_overlap_is_false_only_when_no_topic_matches_both(
    pattern: str, other: str, overlap: bool
) -> None:
    assert may_overlap(pattern, other) is overlap
    assert may_overlap(other, pattern) is overlap
