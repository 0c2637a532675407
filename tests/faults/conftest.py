"""Fault tests: real engine processes, a real redis-server the test kills and restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from tests.faults.harness import Engine


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop()


class Watch:
    """Notes when a condition first holds, checked every few ms in the background: how long
    a switch or a recovery took, measured, never asserted."""

    def __init__(self, condition: Callable[[], bool]) -> None:
        self.started = time.monotonic()
        self.took: float | None = None
        self._task = asyncio.create_task(self._run(condition))

    async def _run(self, condition: Callable[[], bool]) -> None:
        while True:
            if condition():
                break
            await asyncio.sleep(0.005)
        self.took = round(time.monotonic() - self.started, 3)

    def cancel(self) -> None:
        self._task.cancel()
