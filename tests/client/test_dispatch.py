"""The client's delivery path: a run of queued messages handed over in one call behaves as that
many ``deliver`` calls would (order, failures, async handlers, replies, retries left alone)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import pytest

from starmesh import Message, MessageType
from starmesh.bus.inbox import InboxEntry
from starmesh.client.dispatch import Dispatcher
from starmesh.client.once import HandledOnce
from starmesh.client.subscription import Handler, Subscription
from starmesh.core.errors import HandlerError, NotHandledError
from starmesh.core.topics import TopicMatcher
from tests.messages import make_message


def dispatcher(*subscriptions: tuple[str, Handler]) -> tuple[Dispatcher, dict[str, Any]]:
    handlers: TopicMatcher[Subscription] = TopicMatcher()
    for pattern, handler in subscriptions:
        handlers.add(pattern, Subscription(pattern, handler))
    pending: dict[str, asyncio.Future[Message]] = {}
    return Dispatcher("risk/test", handlers, pending), pending


def numbered(topic: str, count: int) -> list[Message]:
    return [make_message(topic, payload={"n": n}) for n in range(count)]


async def test_a_run_calls_every_handler_of_every_message_in_order() -> None:
    calls: list[tuple[str, int]] = []
    run_dispatcher, _ = dispatcher(
        ("risk.*", lambda m: calls.append(("first", m.payload["n"]))),
        ("risk.alert.*", lambda m: calls.append(("second", m.payload["n"]))),
    )
    lane: deque[Any] = deque(numbered("risk.alert.var", 3))
    assert run_dispatcher.deliver_run(lane, 10) == (3, None, None)
    assert calls == [("first", 0), ("second", 0), ("first", 1), ("second", 1),
                     ("first", 2), ("second", 2)]  # fmt: skip
    assert not lane
    assert run_dispatcher.received == 3


async def test_a_run_takes_no_more_than_its_limit_and_stops_before_a_retry() -> None:
    seen: list[int] = []
    run_dispatcher, _ = dispatcher(("risk.*", lambda m: seen.append(m.payload["n"])))
    first, second, third, fourth = numbered("risk.a", 4)
    retry = InboxEntry(third, deliveries=1)
    lane: deque[Any] = deque([first, second, retry, fourth])
    assert run_dispatcher.deliver_run(lane, 1) == (1, None, None)
    assert run_dispatcher.deliver_run(lane, 10) == (1, None, None)
    assert seen == [0, 1]
    assert list(lane) == [retry, fourth]  # the retry is the consumer's to hand over alone


async def test_a_run_ends_at_an_async_handler_and_the_rest_stays_queued() -> None:
    calls: list[str] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(message: Message) -> None:
        calls.append(f"slow {message.payload['n']}")
        entered.set()
        await release.wait()

    run_dispatcher, _ = dispatcher(
        ("risk.*", lambda m: calls.append(f"plain {m.payload['n']}")),
        ("risk.?", slow),
        ("*.a", lambda m: calls.append(f"after {m.payload['n']}")),
    )
    messages = numbered("risk.a", 3)
    lane: deque[Any] = deque(messages)
    taken, message, outcome = run_dispatcher.deliver_run(lane, 10)
    assert (taken, message) == (1, messages[0])
    assert outcome is not None
    assert not isinstance(outcome, Exception)
    assert list(lane) == messages[1:]
    assert calls == ["plain 0"]  # the async handler runs when the consumer awaits it
    waiting = asyncio.ensure_future(outcome)
    await entered.wait()
    assert calls == ["plain 0", "slow 0"]  # the third handler waits for the second
    release.set()
    await waiting
    assert calls == ["plain 0", "slow 0", "after 0"]


@pytest.mark.parametrize("seen_before", [False, True], ids=["new topic", "known topic"])
async def test_a_failing_handler_leaves_the_others_called_and_its_error_returned(
    seen_before: bool,
) -> None:
    """Whether the run takes its inlined path (a topic seen before) or deliver's."""
    calls: list[str] = []

    def broken(message: Message) -> None:
        raise RuntimeError("broken handler")

    run_dispatcher, _ = dispatcher(
        ("risk.*", broken),
        ("*.a", lambda m: calls.append(f"after {m.payload['n']}")),
    )
    if seen_before:
        run_dispatcher.deliver_run(deque([make_message("risk.a", payload={"n": -1})]), 1)
        calls.clear()
    messages = numbered("risk.a", 2)
    lane: deque[Any] = deque(messages)
    taken, message, outcome = run_dispatcher.deliver_run(lane, 10)
    assert (taken, message) == (1, messages[0])
    assert list(lane) == messages[1:]  # the consumer decides: retry it, then go on
    if not isinstance(outcome, Exception):  # the handlers after it, in a continuation
        assert outcome is not None
        with pytest.raises(HandlerError) as raised:
            await outcome
        outcome = raised.value
    assert isinstance(outcome, HandlerError)
    assert "broken handler" in str(outcome)
    assert calls == ["after 0"]


async def test_a_failing_last_handler_returns_its_error_at_once() -> None:
    calls: list[str] = []

    def broken(message: Message) -> None:
        raise RuntimeError("broken handler")

    run_dispatcher, _ = dispatcher(
        ("risk.*", lambda m: calls.append(f"first {m.payload['n']}")), ("*.a", broken)
    )
    run_dispatcher.deliver_run(deque([make_message("risk.a", payload={"n": -1})]), 1)
    calls.clear()  # the topic is known now: the run's inlined path
    lane: deque[Any] = deque(numbered("risk.a", 2))
    taken, _message, outcome = run_dispatcher.deliver_run(lane, 10)
    assert taken == 1
    assert isinstance(outcome, HandlerError)
    assert "broken handler" in str(outcome)
    assert calls == ["first 0"]


async def test_a_run_learns_a_new_topic_and_reports_one_nobody_handles() -> None:
    seen: list[str] = []
    run_dispatcher, _ = dispatcher(("risk.*", lambda m: seen.append(m.topic)))
    lane: deque[Any] = deque([make_message("risk.a"), make_message("risk.a"),
                              make_message("risk.b"), make_message("strategy.x")])  # fmt: skip
    taken, message, outcome = run_dispatcher.deliver_run(lane, 10)
    assert seen == ["risk.a", "risk.a", "risk.b"]
    assert (taken, message is not None) == (4, True)
    assert isinstance(outcome, NotHandledError)
    assert run_dispatcher.unhandled == 1


async def test_a_reply_in_a_run_wakes_its_request_and_reaches_no_handler() -> None:
    seen: list[str] = []
    run_dispatcher, pending = dispatcher(("risk.*", lambda m: seen.append(m.topic)))
    request = make_message("risk.rpc.check")
    waiting: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    pending[request.id] = waiting
    reply = make_message("risk.rpc.check", type=MessageType.REPLY, correlation_id=request.id)
    lane: deque[Any] = deque([reply, make_message("risk.a")])
    assert run_dispatcher.deliver_run(lane, 10) == (2, None, None)
    assert waiting.result() is reply
    assert seen == ["risk.a"]


@pytest.mark.parametrize("count", [1, 7])
async def test_a_run_counts_what_it_received_like_deliver(count: int) -> None:
    by_run, _ = dispatcher(("risk.*", lambda m: None))
    one_by_one, _ = dispatcher(("risk.*", lambda m: None))
    messages = numbered("risk.a", count)
    by_run.deliver_run(deque(messages), count)
    for message in messages:
        one_by_one.deliver(message)
    assert by_run.received == one_by_one.received == count


async def test_with_handled_once_a_run_drops_a_copy_as_deliver_does() -> None:
    seen: list[int] = []
    run_dispatcher, _ = dispatcher(("risk.*", lambda m: seen.append(m.payload["n"])))
    run_dispatcher.once = HandledOnce(100)
    first = make_message("risk.a", payload={"n": 1})
    lane: deque[Any] = deque([first, first, make_message("risk.a", payload={"n": 2})])
    assert run_dispatcher.deliver_run(lane, 10) == (3, None, None)
    assert seen == [1, 2]
    assert run_dispatcher.once.duplicates == 1
    assert run_dispatcher.received == 3


async def test_a_run_counts_handled_failures_and_observations_as_deliver_does() -> None:
    """Runs count ``handled`` once per topic run: the totals must still be deliver's, also
    where a run stops at a failure and the consumer hands the rest over again."""

    def build() -> tuple[Dispatcher, list[tuple[str, str]]]:
        def broken_on_odd(message: Message) -> None:
            if message.payload["n"] % 2:
                raise RuntimeError("odd")

        run_dispatcher, _ = dispatcher(
            ("risk.*", lambda m: None), ("*.b", broken_on_odd), ("*.a", lambda m: None)
        )
        seen: list[tuple[str, str]] = []
        run_dispatcher.observer = lambda m, pattern: seen.append((m.id, pattern))
        return run_dispatcher, seen

    messages = [
        make_message(topic, payload={"n": n})
        for n, topic in enumerate(["risk.a", "risk.a", "risk.b", "risk.b", "risk.b", "risk.a"])
    ]
    by_run, seen_by_run = build()
    lane: deque[Any] = deque(messages)
    while lane:
        _taken, _message, outcome = by_run.deliver_run(lane, 10)
        if outcome is not None and not isinstance(outcome, Exception):
            with pytest.raises(HandlerError):
                await outcome
    one_by_one, seen_one_by_one = build()
    for message in messages:
        with contextlib.suppress(HandlerError):
            one_by_one.deliver(message)

    def counts(d: Dispatcher) -> dict[str, tuple[int, int]]:
        subscriptions = {*d._handlers.match("risk.a"), *d._handlers.match("risk.b")}
        return {s.pattern: (s.handled, s.failures) for s in subscriptions}

    assert counts(by_run) == counts(one_by_one) == {
        "risk.*": (6, 0), "*.b": (2, 1), "*.a": (3, 0)
    }  # fmt: skip
    assert by_run.received == one_by_one.received == 6
    assert seen_by_run == seen_one_by_one
    assert [message_id for message_id, _ in seen_by_run] == [m.id for m in messages]
