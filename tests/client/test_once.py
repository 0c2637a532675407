"""Handled once per instance: a copy is dropped, or waits for the first and runs if it failed."""

from __future__ import annotations

import asyncio

import pytest

from starmesh.client.once import HandledOnce
from tests.core.test_codec import envelope

MESSAGE = envelope({"n": 1})


async def test_a_copy_arriving_while_the_first_runs_waits_and_is_dropped() -> None:
    once = HandledOnce(100)
    release = asyncio.Event()
    runs = 0

    async def handle(message: object) -> None:
        nonlocal runs
        runs += 1
        await release.wait()

    def dispatch(message: object) -> asyncio.Future[None] | None:
        return asyncio.ensure_future(handle(message))

    first = once.run(MESSAGE, dispatch)
    copy = once.run(MESSAGE, dispatch)
    assert first is not None
    assert copy is not None
    release.set()
    await asyncio.gather(first, copy)
    assert (runs, once.duplicates) == (1, 1)
    assert once.run(MESSAGE, dispatch) is None  # later copies: dropped at once
    assert once.duplicates == 2


async def test_a_copy_runs_when_the_first_attempt_failed() -> None:
    once = HandledOnce(100)
    attempts: list[str] = []
    release = asyncio.Event()

    async def handle(first: bool) -> None:
        attempts.append("first" if first else "copy")
        await release.wait()
        if first:
            raise RuntimeError("handler failed")

    first = once.run(MESSAGE, lambda m: handle(True))
    copy = once.run(MESSAGE, lambda m: handle(False))
    assert first is not None
    assert copy is not None
    release.set()
    with pytest.raises(RuntimeError):
        await first
    await copy
    assert attempts == ["first", "copy"]
    assert once.seen(MESSAGE.id)
