"""Start a coroutine in the caller's turn, as Python 3.12's eager tasks do, here on 3.11.

A handler that must run *now* (see
:meth:`starmesh.bus.memory_endpoint.MemoryEndpoint.deliver_at_once`) loses the point of running
now if it is async and handed to ``create_task``: its first step then waits for the event loop
to reach it behind every callback already ready. Most such handlers finish without ever
waiting (they publish in process), so their first step runs here, in the caller's turn; one
that does wait is carried on by a task from where it stopped.

Like an eager task, the coroutine runs in a copy of the caller's context (a ``ContextVar`` it
sets never leaks into the caller), and cancelling the task cancels what the coroutine waits
on, so the coroutine sees ``CancelledError`` where it waits.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

__all__ = ["start_eagerly"]

T = TypeVar("T")


def start_eagerly(awaitable: Awaitable[T], *, name: str | None = None) -> asyncio.Future[T]:
    """Run ``awaitable``'s first step now; the future of its outcome, already done if it
    finished without waiting. An awaitable that is not a coroutine is scheduled as usual.
    """
    if not asyncio.iscoroutine(awaitable):
        return asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    try:
        waiting = context.run(awaitable.send, None)
    except StopIteration as finished:
        outcome: asyncio.Future[T] = loop.create_future()
        outcome.set_result(finished.value)
        return outcome
    except asyncio.CancelledError:
        outcome = loop.create_future()
        outcome.cancel()
        return outcome
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        outcome = loop.create_future()
        outcome.set_exception(exc)
        return outcome
    return loop.create_task(_carry_on(awaitable, waiting), name=name, context=context)


async def _carry_on(coroutine: Coroutine[Any, Any, T], waiting: Any) -> T:
    """Drive ``coroutine`` on from a suspension on ``waiting`` (what it yielded), the way a
    task would: resume it once ``waiting`` is done, pass a cancellation on to it.
    """
    while True:
        resume: Any = coroutine.send
        argument: BaseException | None = None
        try:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield: it gave the loop a turn
            elif asyncio.isfuture(waiting):
                waiting._asyncio_future_blocking = False
                await asyncio.wait((waiting,))
            else:
                resume = coroutine.throw
                argument = RuntimeError(f"a coroutine yielded {waiting!r}, not a future")
        except asyncio.CancelledError:
            if waiting is not None and waiting.cancel():
                # The coroutine finds what it waits on cancelled, as under a task; a task it
                # waits on may take a while to finish cancelling, so wait for that first.
                if not waiting.done():
                    continue
            else:
                resume, argument = coroutine.throw, asyncio.CancelledError()
        try:
            waiting = resume(argument)
        except StopIteration as finished:
            result: T = finished.value
            return result
