import asyncio

import pytest

from starmesh import MessagePriority as P
from starmesh.bus.inbox import InboxEntry, PriorityInbox, message_of
from tests.messages import make_message


def entry(topic: str = "t", priority: P = P.NORMAL, n: int = 0) -> InboxEntry:
    return InboxEntry(make_message(topic, priority, {"n": n}))


def drain(inbox: PriorityInbox) -> list[tuple[str, int]]:
    out = []
    while (e := inbox.get_nowait()) is not None:
        out.append((message_of(e).priority.name, message_of(e).payload["n"]))
    return out


def test_most_urgent_lane_first_fifo_within_a_lane() -> None:
    inbox = PriorityInbox(lane_capacity=10)
    for n, priority in enumerate([P.LOW, P.NORMAL, P.NORMAL, P.FLASH_CRASH, P.HIGH, P.URGENT]):
        assert inbox.put_nowait(entry(priority=priority, n=n))
    assert drain(inbox) == [
        ("FLASH_CRASH", 3),
        ("URGENT", 5),
        ("HIGH", 4),
        ("NORMAL", 1),
        ("NORMAL", 2),
        ("LOW", 0),
    ]


def test_a_full_lane_refuses_but_other_lanes_still_accept() -> None:
    inbox = PriorityInbox(lane_capacity=2)
    assert inbox.put_nowait(entry(n=1))
    assert inbox.put_nowait(entry(n=2))
    assert not inbox.put_nowait(entry(n=3))
    assert inbox.put_nowait(entry(priority=P.FLASH_CRASH, n=4))
    assert len(inbox) == 3
    assert inbox.depths()["normal"] == 2


async def test_put_waits_for_room_and_resumes_in_order() -> None:
    inbox = PriorityInbox(lane_capacity=1)
    inbox.put_nowait(entry(n=1))
    waiting = [asyncio.create_task(inbox.put(entry(n=n))) for n in (2, 3)]
    await asyncio.sleep(0)
    assert not any(t.done() for t in waiting)
    assert drain_one(inbox) == 1
    await asyncio.sleep(0)
    assert waiting[0].done()
    assert not waiting[1].done()
    assert drain_one(inbox) == 2
    await waiting[1]
    assert drain_one(inbox) == 3


def drain_one(inbox: PriorityInbox) -> int:
    got = inbox.get_nowait()
    assert got is not None
    n: int = message_of(got).payload["n"]
    return n


async def test_a_cancelled_waiting_put_passes_its_wakeup_on() -> None:
    inbox = PriorityInbox(lane_capacity=1)
    inbox.put_nowait(entry(n=1))
    first = asyncio.create_task(inbox.put(entry(n=2)))
    second = asyncio.create_task(inbox.put(entry(n=3)))
    await asyncio.sleep(0)
    drain_one(inbox)  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.sleep(0)
    await asyncio.wait_for(second, timeout=1)
    assert drain_one(inbox) == 3
    with pytest.raises(asyncio.CancelledError):
        await first


def test_conflated_topic_replaces_its_queued_message_when_full() -> None:
    inbox = PriorityInbox(lane_capacity=2, conflate=lambda topic: topic.startswith("md."))
    inbox.put_nowait(entry("md.AAPL", n=1))
    inbox.put_nowait(entry("md.MSFT", n=2))
    assert inbox.put_nowait(entry("md.AAPL", n=3))  # full: replaces n=1 in its place
    assert inbox.dropped == 1
    assert [e[1] for e in drain(inbox)] == [3, 2]


def test_conflated_topic_without_a_queued_twin_drops_the_oldest() -> None:
    inbox = PriorityInbox(lane_capacity=2, conflate=lambda topic: topic.startswith("md."))
    inbox.put_nowait(entry("md.AAPL", n=1))
    inbox.put_nowait(entry("md.MSFT", n=2))
    assert inbox.put_nowait(entry("md.TSLA", n=3))
    assert inbox.dropped == 1
    assert [e[1] for e in drain(inbox)] == [2, 3]
    # The bookkeeping forgot AAPL: a new AAPL is an ordinary append now.
    inbox.put_nowait(entry("md.AAPL", n=4))
    assert [e[1] for e in drain(inbox)] == [4]


def test_push_goes_past_capacity_but_not_past_a_newer_conflated_value() -> None:
    inbox = PriorityInbox(lane_capacity=1, conflate=lambda topic: topic.startswith("md."))
    inbox.put_nowait(entry("x", n=1))
    assert inbox.push(entry("x", n=2))
    assert len(inbox) == 2
    inbox.put_nowait(entry("md.AAPL", priority=P.HIGH, n=3))
    assert not inbox.push(entry("md.AAPL", priority=P.HIGH, n=0))
    assert inbox.dropped == 1


async def test_wait_returns_on_put_and_on_wake() -> None:
    inbox = PriorityInbox(lane_capacity=1)
    waiter = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    inbox.put_nowait(entry())
    await asyncio.wait_for(waiter, 1)
    drain(inbox)
    waiter = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0)
    inbox.wake()
    await asyncio.wait_for(waiter, 1)


def test_bare_messages_and_entries_share_the_lanes_in_order() -> None:
    inbox = PriorityInbox(lane_capacity=3)
    first = make_message("t", P.NORMAL, {"n": 1})
    assert inbox.put_nowait(first)
    assert inbox.put_nowait(entry(n=2))
    assert inbox.get_nowait() is first  # what was queued comes back, unwrapped
    assert drain(inbox) == [("NORMAL", 2)]


def test_a_conflated_bare_message_gets_a_cell_a_newer_value_can_take() -> None:
    inbox = PriorityInbox(lane_capacity=1, conflate=lambda topic: topic.startswith("md."))
    assert inbox.put_nowait(make_message("md.AAPL", P.NORMAL, {"n": 1}))
    assert inbox.put_nowait(make_message("md.AAPL", P.NORMAL, {"n": 2}))
    assert drain(inbox) == [("NORMAL", 2)]
    assert inbox.dropped == 1
