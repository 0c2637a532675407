"""Behaviour specific to the embedded transport (the shared contract is in tests/contract)."""

import asyncio

import pytest

from starmesh import EngineType, Message, MessageBusError
from starmesh import MessagePriority as P
from starmesh.bus.memory import MemoryTransport
from starmesh.core.codec import MessageCodec
from starmesh.core.errors import MessageEncodeError
from tests.helpers import Collector
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
