"""The clocks engines are given: simulated time fires timers in order, live time on the loop."""

from __future__ import annotations

import asyncio

import pytest

from starmesh.core.clock import LiveClock, SimulatedClock

START = 1_000_000_000_000


async def test_simulated_timers_fire_in_time_order_each_at_its_due_time() -> None:
    clock = SimulatedClock(START)
    fired: list[tuple[str, int]] = []
    clock.every(1.0, lambda: fired.append(("a", clock.now_ns())), name="a")

    async def b() -> None:
        fired.append(("b", clock.now_ns()))

    clock.every(0.4, b, name="b")
    settled: list[int] = []

    async def settle() -> None:
        settled.append(clock.now_ns())

    assert clock.next_due_ns() == START + 400_000_000
    assert await clock.advance_to(START + 2_000_000_000, settle) == 7
    s = 1_000_000_000
    assert fired == [
        ("b", START + 4 * s // 10), ("b", START + 8 * s // 10), ("a", START + s),
        ("b", START + 12 * s // 10), ("b", START + 16 * s // 10), ("a", START + 2 * s),
        ("b", START + 2 * s),
    ]  # fmt: skip
    assert settled == [t for _, t in fired]  # settled after each, at its time
    assert clock.now_ns() == START + 2 * s
    assert clock.monotonic() == 2.0


async def test_a_cancelled_simulated_timer_fires_no_more() -> None:
    clock = SimulatedClock(START)
    fired: list[int] = []
    timer = clock.every(1.0, lambda: fired.append(clock.now_ns()), name="t")
    await clock.advance_to(START + 1_500_000_000)
    timer.cancel()
    await clock.advance_to(START + 5_000_000_000)
    assert fired == [START + 1_000_000_000]
    assert clock.next_due_ns() is None


async def test_a_failing_timer_is_counted_and_keeps_its_beat() -> None:
    clock = SimulatedClock(START)
    calls: list[int] = []

    def flaky() -> None:
        calls.append(clock.now_ns())
        raise RuntimeError("boom")

    clock.every(1.0, flaky, name="flaky")
    await clock.advance_to(START + 3_000_000_000)
    assert len(calls) == 3
    assert clock.timer_failures == 3


async def test_simulated_time_does_not_go_back_and_intervals_are_positive() -> None:
    clock = SimulatedClock(START)
    with pytest.raises(ValueError, match="backwards"):
        await clock.advance_to(START - 1)
    with pytest.raises(ValueError, match="positive"):
        clock.every(0.0, lambda: None, name="bad")


async def test_live_timers_run_on_the_event_loop() -> None:
    clock = LiveClock()
    ticks: list[int] = []
    enough = asyncio.Event()

    async def tick() -> None:
        ticks.append(clock.now_ns())
        if len(ticks) == 3:
            enough.set()

    timer = clock.every(0.001, tick, name="tick")
    await asyncio.wait_for(enough.wait(), 10)
    timer.cancel()
    assert ticks == sorted(ticks)
    assert timer.name == "tick"
