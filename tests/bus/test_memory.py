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
