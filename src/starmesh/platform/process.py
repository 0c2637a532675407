"""Process-level tuning for an engine process."""

from __future__ import annotations

import gc

__all__ = ["settle_after_startup"]


def settle_after_startup() -> int:
    """Move everything alive after start-up out of the garbage collector's way.

    A full collection walks every tracked object, and a started engine holds tens of
    thousands from its imports alone (pydantic, redis-py, ...). Measured in a receiver working
    through a 50k-message backlog: full collections of 25-36 ms, each delaying whatever
    FLASH_CRASH message arrived meanwhile; with the start-up objects frozen, 4 ms.
    Call once, after the engine's clients have started. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
