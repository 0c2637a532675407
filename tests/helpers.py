"""Synchronisation helpers for tests: wait for a condition, never for a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starmesh import Message


class Collector:
    """A handler that records messages and lets a test wait until ``n`` have arrived."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __call__(self, message: Message) -> None:
        self.messages.append(message)
        for n, future in list(self._waiters):
            if len(self.messages) >= n and not future.done():
                future.set_result(None)

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[Message]:
        if len(self.messages) < n:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((n, future))
            try:
                await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise AssertionError(
                    f"expected {n} messages within {timeout} s, got {len(self.messages)}"
                ) from None
        return self.messages

    @property
    def payloads(self) -> list[object]:
        return [m.payload for m in self.messages]


async def eventually(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 10.0,
    what: str = "condition",
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds.

    For effects that happen in another task or process with no event to await.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(0.005)
