"""Running a coroutine on a chosen event loop implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LoopName", "available_loops", "run_on"]

T = TypeVar("T")
LoopName = Literal["asyncio", "uvloop"]


def _loop_factory(name: LoopName) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return asyncio.new_event_loop


def available_loops() -> list[LoopName]:
    loops: list[LoopName] = ["asyncio"]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return loops
    loops.append("uvloop")
    return loops


def run_on(name: LoopName, main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=_loop_factory(name)) as runner:
        return runner.run(main)
