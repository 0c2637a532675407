"""Behaviour specific to the embedded transport (the shared contract is in tests/contract)."""

import asyncio
from collections import deque
from typing import Any

import pytest

from starmesh import EngineType, Message, MessageBusError
from starmesh import MessagePriority as P
from starmesh.bus.memory import MemoryTransport
from starmesh.bus.transport import RunOutcome
from starmesh.core.codec import MessageCodec
from starmesh.core.errors import ConfigurationError, InvalidTopicError, MessageEncodeError
from tests.helpers import Collector, eventually
from tests.messages import make_message


class Gate:
    """A delivery callback that blocks on the first message until opened."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()
        self.seen: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.seen.append(message)
        self.entered.set()
        await self.opened.wait()


async def started(**options: object) -> MemoryTransport:
    transport = MemoryTransport("test", **options)  # type: ignore[arg-type]
    await transport.start()
    return transport


async def test_shared_topics_round_robin_between_instances() -> None:
    transport = await started()
    counts = {"a": Collector(), "b": Collector()}
    for name, collector in counts.items():

        async def deliver(message: Message, into: Collector = collector) -> None:
            into(message)

        endpoint = await transport.open_endpoint(EngineType.PORTFOLIO, name, deliver)
        await endpoint.subscribe("strategy.*")
    for _ in range(1_000):
        await transport.publish(make_message("strategy.signals.buy"))
    await counts["a"].wait_for(500)
    await counts["b"].wait_for(500)
    await transport.stop()
    assert len(counts["a"].messages) == len(counts["b"].messages) == 500


async def test_broadcast_topics_reach_every_instance() -> None:
    transport = await started(broadcast_patterns=["marketdata.quote.*"])
    collectors = [Collector() for _ in range(3)]
    for n, collector in enumerate(collectors):

        async def deliver(message: Message, into: Collector = collector) -> None:
            into(message)

        endpoint = await transport.open_endpoint(EngineType.STRATEGY, f"s{n}", deliver)
        await endpoint.subscribe("marketdata.*")
    assert await transport.publish(make_message("marketdata.quote.AAPL")) == 1
    await transport.publish(make_message("marketdata.request.get"))  # shared: one instance
    for collector in collectors:
        await collector.wait_for(1)
    await transport.stop()
    topics = sorted(m.topic for c in collectors for m in c.messages)
    assert topics == ["marketdata.quote.AAPL"] * 3 + ["marketdata.request.get"]


async def test_a_full_lane_makes_the_publisher_wait_then_fail_with_advice() -> None:
    transport = await started(lane_capacity=2, publish_timeout=0.2)
    gate = Gate()
    endpoint = await transport.open_endpoint(EngineType.RISK, "slow", gate)
    await endpoint.subscribe("risk.*")
    await transport.publish(make_message("risk.a"))
    await gate.entered.wait()  # one in the handler, two fit in the lane
    await transport.publish(make_message("risk.a"))
    await transport.publish(make_message("risk.a"))
    waiting = asyncio.create_task(transport.publish(make_message("risk.a")))
    await asyncio.sleep(0)
    assert not waiting.done()  # back-pressure: the publisher waits
    # A more urgent lane has its own room: FLASH_CRASH is never stuck behind NORMAL.
    await asyncio.wait_for(transport.publish(make_message("risk.a", P.FLASH_CRASH)), 1)
    with pytest.raises(MessageBusError, match=r"normal lane full .* not keeping up"):
        await waiting
    gate.opened.set()
    await transport.stop()
    assert [m.priority for m in gate.seen] == [P.NORMAL, P.FLASH_CRASH, P.NORMAL, P.NORMAL]


async def test_waiting_publisher_proceeds_when_the_consumer_catches_up() -> None:
    transport = await started(lane_capacity=1, publish_timeout=5)
    gate = Gate()
    endpoint = await transport.open_endpoint(EngineType.RISK, "slow", gate)
    await endpoint.subscribe("risk.*")
    await transport.publish(make_message("risk.a"))
    await gate.entered.wait()
    await transport.publish(make_message("risk.a"))
    waiting = asyncio.create_task(transport.publish(make_message("risk.a")))
    await asyncio.sleep(0)
    gate.opened.set()
    assert await asyncio.wait_for(waiting, 5) == 1
    await transport.stop()
    assert len(gate.seen) == 3


async def test_conflated_topics_never_block_the_publisher() -> None:
    transport = await started(lane_capacity=2, conflated_patterns=["marketdata.*"])
    gate = Gate()
    endpoint = await transport.open_endpoint(EngineType.STRATEGY, "s", gate)
    await endpoint.subscribe("marketdata.*")
    await transport.publish(make_message("marketdata.quote.AAPL", payload={"px": 0}))
    await gate.entered.wait()
    for px in range(1, 101):
        await transport.publish(make_message("marketdata.quote.AAPL", payload={"px": px}))
        await transport.publish(make_message("marketdata.quote.MSFT", payload={"px": px}))
    gate.opened.set()
    await transport.stop()
    assert [(m.topic, m.payload["px"]) for m in gate.seen] == [
        ("marketdata.quote.AAPL", 0),
        ("marketdata.quote.AAPL", 100),
        ("marketdata.quote.MSFT", 100),
    ]
    assert transport.stats()["dropped"] == 198


async def test_the_embedded_bus_rejects_what_redis_would() -> None:
    transport = await started(codec=MessageCodec(max_bytes=1_000))
    with pytest.raises(MessageEncodeError, match="cannot be serialised"):
        await transport.publish(make_message(payload={"x": object()}))
    with pytest.raises(MessageEncodeError, match="limit"):
        await transport.publish(make_message(payload={"x": "y" * 2_000}))
    with pytest.raises(MessageEncodeError, match="limit"):
        await transport.send("risk/x", make_message(payload={"x": "y" * 2_000}))
    await transport.stop()


async def test_counts_unrouted_and_undeliverable() -> None:
    transport = await started()
    assert await transport.publish(make_message("nobody.listens")) == 0
    assert not await transport.send("risk/ghost", make_message())
    stats = transport.stats()
    assert (stats["published"], stats["unrouted"], stats["undeliverable"]) == (1, 1, 1)
    await transport.stop()


async def test_an_instance_name_is_attached_once() -> None:
    transport = await started()

    async def deliver(message: Message) -> None:
        return None

    await transport.open_endpoint(EngineType.RISK, "r1", deliver)
    with pytest.raises(MessageBusError, match="already attached"):
        await transport.open_endpoint(EngineType.RISK, "r1", deliver)
    await transport.stop()
    with pytest.raises(MessageBusError, match="not running"):
        await transport.publish(make_message())


async def test_a_stopped_transport_keeps_its_counts() -> None:
    transport = await started()
    got = Collector()

    async def deliver(message: Message) -> None:
        got(message)

    endpoint = await transport.open_endpoint(EngineType.RISK, "r1", deliver)
    await endpoint.subscribe("risk.*")
    for _ in range(5):
        await transport.publish(make_message("risk.a"))
    await transport.stop()
    assert transport.stats()["delivered"] == 5
    assert transport.stats()["endpoints"] == 0
    assert not transport.health().healthy


async def test_a_more_urgent_message_published_mid_batch_goes_next() -> None:
    """Draining a batch re-checks the lanes between messages: a FLASH_CRASH message a handler
    publishes to its own engine overtakes the NORMAL ones still queued in the batch."""
    transport = await started()
    order: list[str] = []
    done = asyncio.Event()

    async def publish_flash() -> None:
        await transport.publish(make_message("risk.b", P.FLASH_CRASH, {"name": "flash"}))

    pending: list[asyncio.Task[None]] = []

    def deliver(message: Message) -> None:
        order.append(message.payload["name"])
        if message.payload["name"] == "n0":
            # The publish is queued, never delivered re-entrantly: it runs as a task, and
            # lands while n1..n9 are still in the lane (the handler below awaits it).
            pending.append(asyncio.ensure_future(publish_flash()))
        if len(order) == 11:
            done.set()

    async def handle(message: Message) -> None:
        deliver(message)
        if pending:
            await pending.pop()

    endpoint = await transport.open_endpoint(EngineType.RISK, "r", handle)
    await endpoint.subscribe("risk.*")
    for n in range(10):
        await transport.publish(make_message("risk.a", P.NORMAL, {"name": f"n{n}"}))
    await done.wait()
    await transport.stop()
    assert order == ["n0", "flash", *(f"n{n}" for n in range(1, 10))]


async def test_a_message_published_inside_a_sync_handler_is_delivered_after_it_returns() -> None:
    transport = await started()
    events: list[str] = []
    done = asyncio.Event()
    tasks: list[asyncio.Task[int]] = []

    def deliver(message: Message) -> None:
        name = message.payload["name"]
        events.append(f"start {name}")
        if name == "outer":
            tasks.append(
                asyncio.ensure_future(
                    transport.publish(make_message("risk.a", P.FLASH_CRASH, {"name": "inner"}))
                )
            )
        events.append(f"end {name}")
        if name == "inner":
            done.set()

    endpoint = await transport.open_endpoint(EngineType.RISK, "r", deliver)
    await endpoint.subscribe("risk.*")
    await transport.publish(make_message("risk.a", payload={"name": "outer"}))
    await done.wait()
    await transport.stop()
    assert events == ["start outer", "end outer", "start inner", "end inner"]


async def test_a_failed_message_is_retried_from_the_lane_without_an_entry_beforehand() -> None:
    transport = await started(max_deliveries=2)
    attempts: list[int] = []
    ok = Collector()

    def deliver(message: Message) -> None:
        if message.payload["n"] == 1:
            attempts.append(1)
            raise RuntimeError("no")
        ok(message)

    endpoint = await transport.open_endpoint(EngineType.RISK, "r", deliver)
    await endpoint.subscribe("risk.*")
    for n in range(3):
        await transport.publish(make_message("risk.a", payload={"n": n}))
    await ok.wait_for(2)
    letters = await transport.dead_letters(EngineType.RISK)
    await transport.stop()
    assert len(attempts) == 2
    assert [letter.message.payload for letter in letters if letter.message] == [{"n": 1}]
    assert transport.stats()["delivered"] == 2
    assert transport.stats()["redelivered"] == 1


async def test_queued_messages_go_to_the_run_handler_in_one_call_and_a_retry_alone() -> None:
    """What is queued is handed over as a run; a run ends at a failure and the next one goes on
    after it; the failed message, queued again behind them, comes back alone."""
    transport = await started(max_deliveries=2)
    runs: list[int] = []
    seen: list[tuple[int, int]] = []  # (n, attempt)
    attempts: dict[int, int] = {}
    done = asyncio.Event()

    def deliver(message: Message) -> None:
        n = message.payload["n"]
        attempts[n] = attempts.get(n, 0) + 1
        seen.append((n, attempts[n]))
        if n == 2 and attempts[n] == 1:
            raise RuntimeError("first attempt fails")
        if len(seen) == 6:
            done.set()

    def run(lane: deque[Any], limit: int) -> RunOutcome:
        taken = 0
        while taken < limit and lane and type(lane[0]) is Message:
            message = lane.popleft()
            taken += 1
            try:
                deliver(message)
            except RuntimeError as exc:
                runs.append(taken)
                return taken, message, exc
        runs.append(taken)
        return taken, None, None

    endpoint = await transport.open_endpoint(EngineType.RISK, "r", deliver, deliver_run=run)
    await endpoint.subscribe("risk.*")
    for n in range(5):  # publishing never yields while there is room: all queue first
        await transport.publish(make_message("risk.a", payload={"n": n}))
    await done.wait()
    await transport.stop()
    assert seen == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (2, 2)]
    assert runs == [3, 2]  # 0-2 up to the failure, then 3-4; the retry went to deliver
    assert transport.stats()["redelivered"] == 1


async def test_a_consumer_gives_the_loop_a_turn_every_256_messages_across_lanes() -> None:
    """Handlers that never await cannot starve other tasks: the budget spans lanes."""
    transport = await started()
    seen: list[Message] = []
    everything = asyncio.Event()

    def deliver(message: Message) -> None:
        seen.append(message)
        if len(seen) == 400:
            everything.set()

    endpoint = await transport.open_endpoint(EngineType.RISK, "r", deliver)
    await endpoint.subscribe("risk.*")
    for n in range(200):  # publishing never yields while there is room: all queue first
        await transport.publish(make_message("risk.a", P.NORMAL, {"n": n}))
        await transport.publish(make_message("risk.a", P.LOW, {"n": n}))
    handled_when_probe_ran: list[int] = []

    async def probe() -> None:
        handled_when_probe_ran.append(len(seen))

    probing = asyncio.create_task(probe())
    await everything.wait()
    await probing
    await transport.stop()
    assert handled_when_probe_ran == [256]  # 200 NORMAL, then 56 LOW, then a turn
    assert [m.priority for m in seen[:200]] == [P.NORMAL] * 200


# --- FLASH_CRASH: handled inside publish by an idle subscriber --------------------------------


async def idle(transport: MemoryTransport) -> None:
    """Until every consumer has started and waits for messages."""
    await eventually(transport.idle, what="every consumer waiting")


async def test_a_flash_crash_is_handled_by_an_idle_subscriber_before_publish_returns() -> None:
    """Queued, it would wait for the event loop to reach the consumer behind every other ready
    task; handled at once, the halt is done when the alert's publish returns."""
    transport = await started()
    seen = Collector()
    endpoint = await transport.open_endpoint(EngineType.STRATEGY, "s", seen)
    await endpoint.subscribe("risk.alert.*")
    await transport.publish(make_message("risk.alert.x", P.NORMAL, {"n": 0}))
    await idle(transport)  # the consumer has handled it and waits again
    await transport.publish(make_message("risk.alert.flash_crash", P.FLASH_CRASH, {"n": 1}))
    assert seen.payloads == [{"n": 0}, {"n": 1}]
    await transport.publish(make_message("risk.alert.x", P.URGENT, {"n": 2}))
    assert seen.payloads == [{"n": 0}, {"n": 1}], "only FLASH_CRASH skips the queue"
    await seen.wait_for(3)
    await transport.stop()
    assert transport.stats()["delivered"] == 3


async def test_an_async_flash_crash_handler_that_never_waits_is_done_when_publish_returns() -> None:
    """Its first step runs at once too (an alert handler that publishes in process never
    waits): as a task it would wait behind every callback already ready."""
    transport = await started()
    seen: list[int] = []

    async def deliver(message: Message) -> None:
        seen.append(message.payload["n"])

    endpoint = await transport.open_endpoint(EngineType.STRATEGY, "s", deliver)
    await endpoint.subscribe("risk.alert.*")
    await idle(transport)
    await transport.publish(make_message("risk.alert.flash_crash", P.FLASH_CRASH, {"n": 1}))
    assert seen == [1]
    assert transport.idle()
    await transport.stop()
    assert transport.stats()["delivered"] == 1


async def test_an_endpoint_told_to_handles_every_message_at_once_while_idle() -> None:
    transport = await started()
    gate = Gate()
    urgent = await transport.open_endpoint(EngineType.RISK, "r", gate)
    other = Collector()
    queued = await transport.open_endpoint(EngineType.STRATEGY, "s", other)
    for endpoint in (urgent, queued):
        await endpoint.subscribe("marketdata.*")
    urgent.handle_at_once()
    await idle(transport)
    await transport.publish(make_message("marketdata.quote.A", P.NORMAL, {"name": "first"}))
    assert [m.payload["name"] for m in gate.seen] == ["first"]  # inside publish
    assert other.messages == []  # the others queue as ever
    await transport.publish(make_message("marketdata.quote.B", P.NORMAL, {"name": "second"}))
    assert [m.payload["name"] for m in gate.seen] == ["first"], "busy: queued, in order"
    gate.opened.set()
    await eventually(lambda: len(gate.seen) == 2, what="the queued one handled")
    await other.wait_for(2)
    await transport.stop()
    assert [m.payload["name"] for m in gate.seen] == ["first", "second"]


async def test_a_busy_subscriber_gets_the_flash_crash_next_never_alongside() -> None:
    transport = await started()
    gate = Gate()
    endpoint = await transport.open_endpoint(EngineType.STRATEGY, "s", gate)
    await endpoint.subscribe("risk.*")
    await transport.publish(make_message("risk.a", P.NORMAL, {"name": "first"}))
    await gate.entered.wait()  # its handler is running
    await transport.publish(make_message("risk.a", P.NORMAL, {"name": "queued"}))
    await transport.publish(make_message("risk.b", P.FLASH_CRASH, {"name": "flash"}))
    assert [m.payload["name"] for m in gate.seen] == ["first"]
    gate.opened.set()
    await eventually(lambda: len(gate.seen) == 3, what="three handled")
    await transport.stop()
    assert [m.payload["name"] for m in gate.seen] == ["first", "flash", "queued"]


async def test_while_an_async_handler_started_at_once_runs_what_arrives_waits() -> None:
    """The publisher does not wait for an async handler, and the consumer does not start the
    next message beside it: one handler at a time per endpoint, as always."""
    transport = await started()
    running: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    release = asyncio.Event()
    done = Collector()

    async def deliver(message: Message) -> None:
        running.append(message.payload["name"])
        if len(running) > 1:
            overlaps.append(tuple(running))
        if message.payload["name"] == "flash":
            await release.wait()
            running.remove(message.payload["name"])
        done(message)

    endpoint = await transport.open_endpoint(EngineType.STRATEGY, "s", deliver)
    await endpoint.subscribe("risk.*")
    await idle(transport)
    await transport.publish(make_message("risk.b", P.FLASH_CRASH, {"name": "flash"}))
    await transport.publish(make_message("risk.a", P.NORMAL, {"name": "after"}))
    for _ in range(20):  # many loop turns: "after" must not start while "flash" waits
        await asyncio.sleep(0)
    assert running == ["flash"]
    assert not transport.idle(), "a handler still runs: a backtest must not move on"
    release.set()
    await done.wait_for(2)
    await transport.stop()
    assert overlaps == []
    assert [m.payload["name"] for m in done.messages] == ["flash", "after"]


async def test_a_flash_crash_handler_that_fails_at_once_is_retried_then_dead_lettered() -> None:
    transport = await started(max_deliveries=2)
    attempts: list[Message] = []

    def deliver(message: Message) -> None:
        attempts.append(message)
        raise RuntimeError("halt failed")

    endpoint = await transport.open_endpoint(EngineType.STRATEGY, "s", deliver)
    await endpoint.subscribe("risk.*")
    await idle(transport)
    await transport.publish(make_message("risk.b", P.FLASH_CRASH))  # the publisher sees no error
    assert len(attempts) == 1

    async def dead_lettered() -> bool:
        return bool(await transport.dead_letters(EngineType.STRATEGY))

    await eventually(dead_lettered, what="a dead letter")
    await transport.stop()
    assert len(attempts) == 2
    assert transport.stats()["handler_failures"] == 2
    assert transport.stats()["redelivered"] == 1


async def test_flash_crashes_sent_back_and_forth_are_never_handled_re_entrantly() -> None:
    """A handler running at once holds its endpoint: a FLASH_CRASH published back to it from
    the handler it triggered waits for it to return."""
    transport = await started()
    events: list[str] = []
    finished = Collector()

    def handler(engine: str, reply_to: str) -> object:
        async def publish_back(message: Message) -> None:
            await transport.publish(
                make_message(
                    f"{reply_to}.alert", P.FLASH_CRASH, {"hops": message.payload["hops"] + 1}
                )
            )

        def deliver(message: Message) -> object:
            events.append(f"start {engine} {message.payload['hops']}")
            pending = publish_back(message) if message.payload["hops"] < 3 else None
            events.append(f"end {engine} {message.payload['hops']}")
            finished(message)
            return pending

        return deliver

    a = await transport.open_endpoint(EngineType.RISK, "a", handler("risk", "strategy"))  # type: ignore[arg-type]
    b = await transport.open_endpoint(EngineType.STRATEGY, "b", handler("strategy", "risk"))  # type: ignore[arg-type]
    await a.subscribe("risk.*")
    await b.subscribe("strategy.*")
    await idle(transport)
    await transport.publish(make_message("risk.alert", P.FLASH_CRASH, {"hops": 0}))
    await finished.wait_for(4)
    await transport.stop()
    for n in range(4):  # each handler ended before the next began
        assert events[2 * n].startswith("start")
        assert events[2 * n + 1].startswith("end")
        assert events[2 * n].split()[1:] == events[2 * n + 1].split()[1:]


async def test_a_stop_waits_for_an_async_handler_started_at_once() -> None:
    transport = await started()
    release = asyncio.Event()
    finished: list[str] = []

    async def deliver(message: Message) -> None:
        await release.wait()
        finished.append(message.topic)

    endpoint = await transport.open_endpoint(EngineType.STRATEGY, "s", deliver)
    await endpoint.subscribe("risk.*")
    await idle(transport)
    await transport.publish(make_message("risk.b", P.FLASH_CRASH))
    await transport.publish(make_message("risk.a", P.NORMAL))
    stopping = asyncio.create_task(transport.stop())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await stopping
    assert finished == ["risk.b", "risk.a"]  # what waited behind it was handled, not dropped


async def test_a_topic_planned_ahead_is_routed_before_its_first_message_and_kept_so() -> None:
    """White-box: the plan cache is what a first publish would otherwise compute."""
    transport = await started()
    first = await transport.open_endpoint(EngineType.WEBSOCKET, "w", Collector())
    await first.subscribe("*")
    transport.plan_ahead("risk.alert.flash_crash")
    routed = transport._plans["risk.alert.flash_crash"]
    assert [endpoint.address for endpoint in routed.every] == ["websocket/w"]
    later = await transport.open_endpoint(EngineType.STRATEGY, "s", Collector())
    await later.subscribe("risk.alert.*")  # a subscription change re-plans it, not forgets it
    routed = transport._plans["risk.alert.flash_crash"]
    assert [endpoint.address for endpoint in routed.every] == ["websocket/w", "strategy/s"]
    with pytest.raises(InvalidTopicError):
        transport.plan_ahead("risk.alert.*")
    for n in range(63):
        transport.plan_ahead(f"risk.alert.t{n}")
    with pytest.raises(ConfigurationError, match="at most 64"):
        transport.plan_ahead("risk.alert.one_more")
    await transport.stop()
