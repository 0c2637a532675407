"""Sending at a fixed rate from an event loop, without the loop's millisecond sleep granularity.

``asyncio.sleep`` cannot wait less than about a millisecond, so waits longer than 2 ms sleep
and shorter ones yield with ``sleep(0)`` until the next send time: each message then goes out
alone, and its latency is that of one hop, not of a burst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["send_paced"]


async def send_paced(count: int, rate: float, send: Callable[[int], Awaitable[object]]) -> float:
    """Call ``send(i)`` for i in range(count), ``rate`` per second; returns the seconds taken."""
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(count):
        target = start + i * interval
        while (delay := target - time.perf_counter()) > 0:  # noqa: ASYNC110 - pacing, not waiting
            await asyncio.sleep(delay - 0.001 if delay > 0.002 else 0)
        await send(i)
    return time.perf_counter() - start
