"""Topics and subscription patterns.

A topic is dot-separated (``strategy.signals.buy``). A pattern uses glob semantics, exactly
those of :func:`fnmatch.fnmatchcase`: ``*`` matches any run of characters, dots included,
``?`` one character, ``[seq]`` one of a set; a pattern without wildcards matches only itself.

:class:`TopicMatcher` answers "which subscriptions match this topic" with one dict lookup for
a topic seen before; the scan over wildcard patterns runs once per new topic.
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from starmesh.core.errors import InvalidTopicError

__all__ = [
    "MAX_TOPIC_LENGTH",
    "TopicMatcher",
    "is_wildcard",
    "literal_prefix",
    "may_overlap",
    "validate_pattern",
    "validate_topic",
]

MAX_TOPIC_LENGTH: Final = 512
_WILDCARDS: Final = frozenset("*?[")
_FORBIDDEN: Final = re.compile(r"[\s\x00-\x1f\x7f]")

T = TypeVar("T", bound=Hashable)


def is_wildcard(pattern: str) -> bool:
    return not _WILDCARDS.isdisjoint(pattern)


def literal_prefix(pattern: str) -> str:
    """What every topic ``pattern`` matches starts with: the text before its first wildcard."""
    for i, char in enumerate(pattern):
        if char in _WILDCARDS:
            return pattern[:i]
    return pattern


def may_overlap(pattern: str, other: str) -> bool:
    """False only when no topic can match both patterns: their literal prefixes part ways
    (``marketdata.request.get`` and ``marketdata.quote.*``). True may be a false positive
    (``a.*.x`` and ``a.*.y``): for deciding what to read, never what to deliver."""
    mine, theirs = literal_prefix(pattern), literal_prefix(other)
    return mine.startswith(theirs) or theirs.startswith(mine)


def _check_common(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidTopicError(f"{what} must be a str, got {type(text).__name__}")
    if not text:
        raise InvalidTopicError(f"{what} is empty; use a dot-separated name like 'risk.alert.var'")
    if len(text) > MAX_TOPIC_LENGTH:
        raise InvalidTopicError(
            f"{what} is {len(text)} characters; the limit is {MAX_TOPIC_LENGTH}"
        )
    if _FORBIDDEN.search(text):
        raise InvalidTopicError(f"{what} {text!r} contains whitespace or control characters")
    if text.startswith(".") or text.endswith(".") or ".." in text:
        raise InvalidTopicError(f"{what} {text!r} has an empty segment")
    return text


def validate_topic(topic: object) -> str:
    """Return ``topic`` if it is a valid topic to publish to, else raise InvalidTopicError."""
    checked = _check_common(topic, "topic")
    if is_wildcard(checked) or "]" in checked:
        raise InvalidTopicError(
            f"topic {checked!r} contains a wildcard; wildcards belong in subscription patterns"
        )
    return checked


def validate_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is a valid subscription pattern, else raise InvalidTopicError."""
    return _check_common(pattern, "pattern")


class TopicMatcher(Generic[T]):
    """Maps patterns to values; ``match(topic)`` returns every value whose pattern matches.

    Results keep subscription order and list each value once. They are cached per topic
    (bounded; the oldest entries go first) and the cache is dropped on every change, since
    subscriptions change rarely and topics are published often.
    """

    def __init__(self, cache_size: int = 65_536) -> None:
        self._exact: dict[str, dict[T, None]] = {}
        self._wild: dict[str, tuple[Callable[[str], object], dict[T, None]]] = {}
        # OrderedDict: evicting its oldest entry is O(1), a plain dict's is not (see dedup.py).
        self._cache: OrderedDict[str, tuple[T, ...]] = OrderedDict()
        self._cache_size = cache_size
        self.lookup: Callable[[str], tuple[T, ...] | None] = self._cache.get
        """``match`` for a topic seen since the last change, else None: one dict read, for
        the delivery path (a Python method call costs as much as the lookup)."""

    def add(self, pattern: str, value: T) -> bool:
        """Subscribe ``value`` to ``pattern``; False if it already was."""
        validate_pattern(pattern)
        if is_wildcard(pattern):
            if pattern not in self._wild:
                regex = re.compile(fnmatch.translate(pattern))
                self._wild[pattern] = (regex.match, {})
            values = self._wild[pattern][1]
        else:
            values = self._exact.setdefault(pattern, {})
        if value in values:
            return False
        values[value] = None
        self._cache.clear()
        return True

    def remove(self, pattern: str, value: T) -> bool:
        """Unsubscribe ``value`` from ``pattern``; False if it was not subscribed."""
        if pattern in self._wild:
            values = self._wild[pattern][1]
            if values.pop(value, _MISSING) is _MISSING:
                return False
            if not values:
                del self._wild[pattern]
        elif pattern in self._exact:
            values = self._exact[pattern]
            if values.pop(value, _MISSING) is _MISSING:
                return False
            if not values:
                del self._exact[pattern]
        else:
            return False
        self._cache.clear()
        return True

    def match(self, topic: str) -> tuple[T, ...]:
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found: dict[T, None] = dict(self._exact.get(topic, {}))
        for matches, values in self._wild.values():
            if matches(topic):
                found.update(values)
        result = tuple(found)
        if len(self._cache) >= self._cache_size:
            self._cache.popitem(last=False)
        self._cache[topic] = result
        return result

    def patterns(self, value: T | None = None) -> list[str]:
        """All patterns, or those ``value`` is subscribed to, in subscription order."""
        every = [*self._exact.items(), *((p, v) for p, (_, v) in self._wild.items())]
        return [p for p, values in every if value is None or value in values]

    def __len__(self) -> int:
        return len(self._exact) + len(self._wild)


_MISSING: Final = object()
