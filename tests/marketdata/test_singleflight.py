import asyncio

import pytest

from starmesh.marketdata.singleflight import SingleFlight


async def test_concurrent_calls_for_one_key_share_one_execution() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def upstream() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    waiting = [asyncio.create_task(flights.run("AAPL", upstream)) for _ in range(100)]
    await asyncio.sleep(0)
    assert flights.in_flight("AAPL")
    release.set()
    assert await asyncio.gather(*waiting) == [42] * 100
    assert calls == 1
    assert flights.joined == 99
    assert not flights.in_flight("AAPL")
    assert await flights.run("AAPL", upstream) == 42  # done flights are not reused
    assert calls == 2


async def test_everyone_waiting_gets_the_same_error() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise ConnectionError("provider down")

    waiting = [asyncio.create_task(flights.run("k", failing)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert len({id(o) for o in outcomes}) == 1


async def test_a_cancelled_caller_neither_stops_the_flight_nor_fails_the_others() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def slow() -> int:
        await release.wait()
        return 1

    leader = asyncio.create_task(flights.run("k", slow))
    await asyncio.sleep(0)
    follower = asyncio.create_task(flights.run("k", slow))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    release.set()
    assert await follower == 1


async def test_the_flight_is_cancelled_once_its_last_caller_has_gone() -> None:
    """Before: it ran on with nobody to use its result, burning upstream quota."""
    flights: SingleFlight[str, int] = SingleFlight()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def endless() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        return 0

    callers = [asyncio.create_task(flights.run("k", endless)) for _ in range(2)]
    await started.wait()
    callers[0].cancel()
    await asyncio.gather(callers[0], return_exceptions=True)
    assert not stopped.is_set()  # one caller still waits
    callers[1].cancel()
    await asyncio.gather(callers[1], return_exceptions=True)
    await stopped.wait()
    assert flights.abandoned == 1
    assert not flights.in_flight("k")
