"""Handled once per instance, whichever path brought the message.

With failover a message can reach an instance twice: over HTTP, then from the outbox replayed
into Redis after a lost answer, or from Redis after a publish whose answer was lost. The
instance remembers the ids it handled (the last ``STARMESH_DEDUP_WINDOW``) and drops a copy;
a copy arriving while the first is still being handled waits for it, and is handled only if
the first failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starmesh.bus.dedup import DedupWindow
from starmesh.core.message import Message

__all__ = ["HandledOnce"]

Dispatch = Callable[[Message], Awaitable[None] | None]


class HandledOnce:
    def __init__(self, window: int) -> None:
        self._handled = DedupWindow(window)
        self._running: dict[str, asyncio.Future[bool] | None] = {}
        """Ids being handled -> a future for a copy waiting on the outcome (made only then)."""
        self.duplicates = 0

    def seen(self, message_id: str) -> bool:
        return message_id in self._handled

    def run(self, message: Message, dispatch: Dispatch) -> Awaitable[None] | None:
        """``dispatch(message)`` unless it was handled already (synchronously if it can)."""
        message_id = message.id
        if message_id in self._handled:
            self.duplicates += 1
            return None
        if message_id in self._running:
            waiting = self._running[message_id]
            if waiting is None:
                waiting = self._running[message_id] = asyncio.get_running_loop().create_future()
            return self._after(waiting, message, dispatch)
        outcome = dispatch(message)  # raising here: not handled, a redelivery may try again
        if outcome is None:
            self._handled.add(message_id)
            return None
        # Marked running now, not when the caller first awaits: a copy coming in between must
        # see it. No future unless a copy comes meanwhile: cheap.
        self._running[message_id] = None
        return self._track(message_id, outcome)

    async def _track(self, message_id: str, outcome: Awaitable[None]) -> None:
        ok = False
        try:
            await outcome
            ok = True
            self._handled.add(message_id)
        finally:
            waiting = self._running.pop(message_id, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(ok)

    async def _after(
        self, running: asyncio.Future[bool], message: Message, dispatch: Dispatch
    ) -> None:
        if await asyncio.shield(running):
            self.duplicates += 1
            return
        again = self.run(message, dispatch)  # the first attempt failed: this one counts
        if again is not None:
            await again
