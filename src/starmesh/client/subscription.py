"""A handler subscribed to a pattern, and how to call it whether it is sync or async."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from starmesh.core.message import Message

__all__ = ["Handler", "Subscription"]

logger = logging.getLogger("starmesh.client")

Handler = Callable[[Message], Awaitable[None] | None]
"""Called with each message matching the pattern: a plain function or a coroutine function."""


class Subscription:
    """Returned by ``subscribe``; pass it to ``unsubscribe``. Counts what its handler did."""

    __slots__ = ("failures", "handled", "handler", "last_error", "pattern")

    def __init__(self, pattern: str, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(
                f"handler for {pattern!r} must be callable, got {type(handler).__name__}"
            )
        self.pattern = pattern
        self.handler = handler
        self.handled = 0
        self.failures = 0
        self.last_error: Exception | None = None

    def invoke(self, message: Message) -> bool | Awaitable[None]:
        """Call the handler: True or False (logged, counted) when it is done, or the awaitable it
        returned (an async handler's coroutine) for :meth:`finish`. A plain function thus costs
        no coroutine per message.
        """
        try:
            result = self.handler(message)
        except Exception as exc:
            self.failed(message, exc)
            return False
        if result is not None and inspect.isawaitable(result):
            return result
        self.handled += 1
        return True

    async def finish(self, pending: Awaitable[None], message: Message) -> bool:
        try:
            await pending
        except Exception as exc:
            self.failed(message, exc)
            return False
        self.handled += 1
        return True

    def failed(self, message: Message, exc: Exception) -> None:
        """Count and log (boundedly) that the handler raised ``exc`` on ``message``."""
        self.failures += 1
        self.last_error = exc
        if self.failures & (self.failures - 1) == 0:  # 1st, 2nd, 4th, ...: bounded logs
            logger.exception(
                "handler %s failed on %r (failure #%d of this subscription)",
                getattr(self.handler, "__qualname__", repr(self.handler)),
                message.topic,
                self.failures,
            )

    def __repr__(self) -> str:
        name = getattr(self.handler, "__qualname__", repr(self.handler))
        return f"Subscription({self.pattern!r}, {name})"
