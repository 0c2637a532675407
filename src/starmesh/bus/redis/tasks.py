"""Small helpers for tasks and stream entry ids."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["cancel_and_wait", "id_tuple", "next_id"]

logger = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has finished.

    Cancels again while it runs on: on Python 3.11 ``asyncio.wait_for`` (which redis-py uses
    to send when a socket timeout is set) swallows a cancellation that arrives as its inner
    call completes.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.05)
    if not task.cancelled() and task.exception() is not None:
        logger.error("task %s had failed", task.get_name(), exc_info=task.exception())


def id_tuple(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id (``b"1795704340611-3"``) as comparable numbers."""
    milliseconds, _, sequence = entry_id.partition(b"-")
    return int(milliseconds), int(sequence or b"0")


def next_id(entry_id: bytes) -> bytes:
    """The smallest id after ``entry_id``."""
    milliseconds, _, sequence = entry_id.partition(b"-")
    return b"%s-%d" % (milliseconds, int(sequence or b"0") + 1)
