"""Posts: publishes a caller does not wait for, still followed to the end.

A post's first step runs in the caller's turn (:func:`~starmesh.bus.eager.start_eagerly`),
so its commands join the publisher's batch in publish order; what is left (the round trip)
is kept here until it ends, its failure logged and counted, and awaited at stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from starmesh.bus.eager import start_eagerly

__all__ = ["Posts"]

logger = logging.getLogger("starmesh.client")


class Posts:
    def __init__(self, address: str) -> None:
        self._address = address
        self._under_way: set[asyncio.Future[str]] = set()
        self._last: asyncio.Future[str] | None = None
        """The latest post still under way."""
        self.failures = 0

    @property
    def idle(self) -> bool:
        """No post is under way: the next one cannot have one to wait behind."""
        return self._last is None

    def start(
        self, publish: Coroutine[Any, Any, str], *, name: str, queued_at_once: bool
    ) -> asyncio.Future[str]:
        """Run ``publish`` up to its first wait now; its outcome, followed from here on.

        ``queued_at_once``: the transport queues a publish in its first step whatever
        follows (Redis: the publisher's batch), so a post that waits keeps its place. Where
        it does not (the embedded bus: a post waits for room in a full lane before it
        reaches the subscribers after it), a post starts only once the one before it ended.
        """
        if not queued_at_once and self._last is not None:
            publish = _after(self._last, publish)
        posted = start_eagerly(publish, name=name)
        if posted.done():
            self._ended(posted)
        else:
            self._under_way.add(posted)
            self._last = posted
            posted.add_done_callback(self._ended)
        return posted

    async def drain(self) -> None:
        """Wait until every post under way has ended (a failure is already counted)."""
        while self._under_way:
            await asyncio.gather(*self._under_way, return_exceptions=True)

    def _ended(self, posted: asyncio.Future[str]) -> None:
        self._under_way.discard(posted)
        if self._last is posted:
            self._last = None
        if posted.cancelled():
            return
        if (error := posted.exception()) is not None:
            self.failures += 1
            logger.error("%s: a posted message was not published: %s", self._address, error)


async def _after(earlier: asyncio.Future[str], publish: Coroutine[Any, Any, str]) -> str:
    """``publish``, once ``earlier`` has ended (its outcome is its own to report)."""
    try:
        await asyncio.wait((earlier,))
    except BaseException:
        publish.close()  # never started: no "never awaited" warning
        raise
    return await publish
