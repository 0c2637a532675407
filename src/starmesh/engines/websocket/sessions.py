"""One browser's view of the bus: the patterns it chose, and what waits to be sent to it.

A browser that reads slower than the bus writes must never slow the bus: what waits for it is
conflated, the latest message per topic replacing the one before it, so memory stays bounded
by the number of topics and the browser always gets the newest values. URGENT and FLASH_CRASH
messages (alerts) are never conflated away: they wait in order, up to a bound, and end the
pause between two frames (``pause``) at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, NamedTuple

from starmesh.core.enums import MessagePriority
from starmesh.core.message import Message
from starmesh.core.topics import TopicMatcher, validate_pattern

__all__ = ["ClientSession", "Outgoing"]

_URGENT: Final = MessagePriority.URGENT
MAX_PATTERNS: Final = 64
MAX_URGENT_WAITING: Final = 1_000


class Outgoing(NamedTuple):
    message: Message
    text: str
    """The message as its JSON object for browsers: encoded once, whatever the browsers."""


class ClientSession:
    def __init__(self, name: str) -> None:
        self.name = name
        self._patterns: TopicMatcher[bool] = TopicMatcher()
        self._latest: dict[str, Outgoing] = {}
        self._urgent: deque[Outgoing] = deque(maxlen=MAX_URGENT_WAITING)
        self._platform: bytes | None = None
        self._ready = asyncio.Event()
        self._urgent_ready = asyncio.Event()
        self.conflated = 0
        self.dropped = 0
        self.sent = 0

    @property
    def patterns(self) -> list[str]:
        return self._patterns.patterns()

    def subscribe(self, patterns: list[str]) -> None:
        """Follow ``patterns`` too; a bad one raises ``InvalidTopicError`` and changes nothing."""
        for pattern in patterns:
            validate_pattern(pattern)
        if len(self._patterns) + len(patterns) > MAX_PATTERNS:
            raise ValueError(f"at most {MAX_PATTERNS} patterns per connection")
        for pattern in patterns:
            self._patterns.add(pattern, True)

    def unsubscribe(self, patterns: list[str]) -> None:
        for pattern in patterns:
            self._patterns.remove(pattern, True)

    def follows(self, topic: str) -> bool:
        """Whether this browser chose ``topic`` (O(1) for a topic seen before)."""
        return bool(self._patterns.match(topic))

    def queue(self, message: Message, text: str) -> None:
        """Queue ``message`` (and its encoded ``text``), of a topic this browser follows: the
        engine asks :meth:`follows` once per topic, not once per message."""
        outgoing = Outgoing(message, text)
        if message.priority >= _URGENT:
            if len(self._urgent) == MAX_URGENT_WAITING:
                self.dropped += 1  # the oldest goes: a browser this far behind is gone
            self._urgent.append(outgoing)
            self._urgent_ready.set()
        else:
            if message.topic in self._latest:
                self.conflated += 1
            self._latest[message.topic] = outgoing
        self._ready.set()

    def offer_platform(self, frame: bytes) -> None:
        """The platform's figures, already encoded: only the latest one waits."""
        self._platform = frame
        self._ready.set()

    async def take(self) -> tuple[list[Outgoing], bytes | None]:
        """Wait for something to send: the messages waiting, urgent first, and the platform
        frame if a new one came."""
        await self._ready.wait()
        self._ready.clear()
        batch = [*self._urgent, *self._latest.values()]
        self._urgent.clear()
        self._urgent_ready.clear()
        self._latest = {}
        platform, self._platform = self._platform, None
        self.sent += len(batch)
        return batch, platform

    async def pause(self, seconds: float) -> None:
        """Let messages gather for up to ``seconds``; an urgent one ends the pause at once."""
        if self._urgent:
            return
        try:
            await asyncio.wait_for(self._urgent_ready.wait(), seconds)
        except TimeoutError:
            pass
