"""start_eagerly: a coroutine's first step in the caller's turn, the rest as a task would."""

import asyncio
import contextvars

import pytest

from starmesh.bus.eager import start_eagerly

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="caller")


async def test_a_coroutine_that_never_waits_has_finished_when_it_returns() -> None:
    steps: list[str] = []

    async def quick() -> int:
        steps.append("ran")
        return 7

    outcome = start_eagerly(quick())
    assert steps == ["ran"]  # no event-loop turn in between
    assert outcome.done()
    assert outcome.result() == 7


async def test_a_failure_in_the_first_step_is_the_outcome_not_raised_at_the_caller() -> None:
    async def broken() -> None:
        raise ValueError("bad alert")

    outcome = start_eagerly(broken())
    assert outcome.done()
    with pytest.raises(ValueError, match="bad alert"):
        outcome.result()


async def test_a_coroutine_that_waits_runs_up_to_the_wait_then_goes_on_as_a_task() -> None:
    steps: list[str] = []
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def waits() -> str:
        steps.append("before")
        got = await gate
        steps.append(f"after {got}")
        await asyncio.sleep(0)  # a bare yield is carried on too
        return got.upper()

    outcome = start_eagerly(waits())
    assert steps == ["before"]
    assert not outcome.done()
    gate.set_result("go")
    assert await outcome == "GO"
    assert steps == ["before", "after go"]


async def test_an_exception_of_what_it_waits_on_reaches_the_coroutine() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recovers() -> str:
        try:
            await gate
        except KeyError:
            return "recovered"
        return "not raised"

    outcome = start_eagerly(recovers())
    gate.set_exception(KeyError("gone"))
    assert await outcome == "recovered"


async def test_cancelling_it_cancels_the_wait_and_the_coroutine_sees_it() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def cleans_up() -> None:
        try:
            await gate
        except asyncio.CancelledError:
            seen.append("cancelled where it waited")
            raise

    outcome = start_eagerly(cleans_up())
    await asyncio.sleep(0)  # the task is now waiting on the gate
    outcome.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outcome
    assert gate.cancelled()
    assert seen == ["cancelled where it waited"]


async def test_cancelling_it_while_it_waits_on_a_task_waits_for_that_task_to_finish() -> None:
    inner_cleaned = asyncio.Event()

    async def inner() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cancelling takes a turn of its own
            inner_cleaned.set()

    async def outer() -> None:
        await asyncio.ensure_future(inner())

    outcome = start_eagerly(outer())
    await asyncio.sleep(0)
    outcome.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outcome
    assert inner_cleaned.is_set()


async def test_its_context_is_a_copy_and_kept_across_the_wait() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def sets_and_reads() -> None:
        where.set("handler")
        await gate
        seen.append(where.get())

    outcome = start_eagerly(sets_and_reads())
    assert where.get() == "caller"  # what the handler set does not leak into the caller
    gate.set_result(None)
    await outcome
    assert seen == ["handler"]


async def test_an_awaitable_that_is_not_a_coroutine_is_scheduled_as_usual() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    assert start_eagerly(future) is future
