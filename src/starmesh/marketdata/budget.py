"""One time budget per market-data call, from the engine's deadline down to the source.

The hub knows when the engine that asked stops waiting (a bus request's ``deadline_ns``, the
``timeout`` of an HTTP query, else ``STARMESH_SOURCE_TIMEOUT_S``). It runs each upstream call
inside :func:`budget`, and a source reads what is left with :func:`remaining` to size its
own timeouts and retries: no layer waits longer than the caller will.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starmesh.core.clock import Clock

__all__ = ["budget", "remaining"]

# A context variable: the upstream call runs in a task of its own (single-flight), which
# copies the context of the caller that started it, so the budget travels with the call.
_current: ContextVar[tuple[Clock, float] | None] = ContextVar("starmesh_budget", default=None)


@contextmanager
def budget(clock: Clock, deadline: float) -> Iterator[None]:
    """Calls made inside have until ``deadline`` (on ``clock``'s monotonic scale)."""
    token = _current.set((clock, deadline))
    try:
        yield
    finally:
        _current.reset(token)


def remaining(default: float) -> float:
    """Seconds left of the running call's budget; ``default`` outside a budgeted call."""
    current = _current.get()
    if current is None:
        return default
    clock, deadline = current
    return max(0.0, min(default, deadline - clock.monotonic()))
