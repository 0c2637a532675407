"""A browser's queue: conflation for the slow, order for the urgent, patterns it chose."""

from __future__ import annotations

import asyncio

import pytest

from starmesh import MessagePriority
from starmesh.core.errors import InvalidTopicError
from starmesh.core.message import Message
from starmesh.engines.websocket import ClientSession
from tests.messages import make_message


def offer(session: ClientSession, message: Message) -> None:
    """What the engine does for each browser with each message."""
    if session.follows(message.topic):
        session.queue(message, text="")


async def test_a_slow_browser_gets_the_latest_value_per_topic_and_every_urgent_one() -> None:
    session = ClientSession("b1")
    session.subscribe(["portfolio.*", "risk.alert.*"])
    for n in range(100):
        offer(session, make_message("portfolio.balance.update", payload={"n": n}))
    offer(session, make_message("marketdata.quote.AAPL", payload={"n": 0}))  # not followed
    for n in range(3):
        offer(session, make_message("risk.alert.var", MessagePriority.URGENT, payload={"n": n}))
    session.offer_platform(b'{"type":"platform"}')
    batch, platform = await session.take()
    assert [(m.topic, m.payload["n"]) for m, _ in batch] == [
        ("risk.alert.var", 0), ("risk.alert.var", 1), ("risk.alert.var", 2),
        ("portfolio.balance.update", 99),
    ]  # fmt: skip
    assert platform == b'{"type":"platform"}'
    assert session.conflated == 99
    assert session.sent == 4


def test_bad_patterns_change_nothing() -> None:
    session = ClientSession("b2")
    with pytest.raises(InvalidTopicError):
        session.subscribe(["risk.*", "no spaces allowed"])
    assert session.patterns == []
    with pytest.raises(ValueError, match="at most 64 patterns"):
        session.subscribe([f"topic.{n}" for n in range(65)])
    session.subscribe(["*"])
    session.unsubscribe(["*"])
    assert session.patterns == []


async def test_an_urgent_message_ends_the_pause_between_frames_at_once() -> None:
    session = ClientSession("b3")
    session.subscribe(["*"])
    pausing = asyncio.create_task(session.pause(3_600))  # an hour: only the alert ends it
    await asyncio.sleep(0)
    offer(session, make_message("portfolio.balance.update", payload={"n": 1}))
    await asyncio.sleep(0)
    assert not pausing.done()  # an ordinary message waits for the next frame
    offer(session, make_message("risk.alert.var", MessagePriority.URGENT, payload={"n": 2}))
    await asyncio.wait_for(pausing, 60)
    batch, _ = await session.take()
    assert [m.topic for m, _ in batch] == ["risk.alert.var", "portfolio.balance.update"]
    await asyncio.wait_for(session.pause(0.001), 60)  # with nothing urgent it just waits
