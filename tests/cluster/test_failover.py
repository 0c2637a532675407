"""A master of the cluster fails over while engines publish to the inbox it serves: nothing is
lost. Figures (how long, what was sent again) go to bench-results/faults.jsonl, never into
assertions.

- ``CLUSTER FAILOVER`` on the replica (the coordinated way): the master stops taking writes,
  the replica catches up, takes over; writes waiting meanwhile get MOVED and go again.
- ``kill -9`` of the master: the replica takes over once the others agree the master is gone
  (``cluster-node-timeout``). Replication is asynchronous, so what the master acknowledged
  and had not yet streamed to its replica dies with it; with ``STARMESH_REDIS_WAIT_REPLICAS=1``
  a publish returns only once the replica holds it, which this test uses, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from starmesh import EngineType, Message, MessageBusClient, MessagePriority, Settings
from starmesh import create_messagebus_client as client_of
from starmesh.bus.redis.keys import Keys
from starmesh.testing import LocalRedisCluster
from tests.faults.harness import FaultReport
from tests.helpers import eventually

E = EngineType
N = 3_000


class Tally:
    """Every ``n`` a subscriber's handlers ran for (a redelivery dropped by id never runs)."""

    def __init__(self) -> None:
        self.times: Counter[int] = Counter()

    def __call__(self, message: Message) -> None:
        self.times[message.payload["n"]] += 1


async def publish_all(strategy: MessageBusClient, longest: list[float]) -> None:
    for first in range(0, N, 50):
        for n in range(first, first + 50):
            started = time.monotonic()
            await strategy.publish("strategy.signals.buy", {"n": n})
            longest[0] = max(longest[0], time.monotonic() - started)
        await asyncio.sleep(0.002)  # a steady stream, so the fault falls in its middle


async def run_through(
    cluster: LocalRedisCluster,
    settings: Settings,
    report: FaultReport,
    fault: Callable[[int, int], Awaitable[None]],
) -> None:
    """Publish N messages to two engines while ``fault(master, replica)`` hits the master of
    the risk engine's inbox; check both engines handled every message exactly once."""
    prefix = settings.key_prefix
    master = cluster.master_port_of(Keys(prefix).inbox(E.RISK, MessagePriority.NORMAL))
    replica = cluster.replica_of(master)
    risk, portfolio = Tally(), Tally()
    clients = [client_of(e, url=cluster.url, settings=settings) for e in (E.RISK, E.PORTFOLIO)]
    await clients[0].subscribe("strategy.signals.*", risk)
    await clients[1].subscribe("strategy.signals.*", portfolio)
    strategy = client_of(E.STRATEGY, url=cluster.url, settings=settings)
    longest = [0.0]
    try:
        for client in [*clients, strategy]:
            await client.start()
        publishing = asyncio.create_task(publish_all(strategy, longest))
        await eventually(lambda: len(risk.times) >= 300, timeout=30, what="risk handling")
        started = time.monotonic()
        await fault(master, replica)
        report.switch_s = round(time.monotonic() - started, 3)
        await publishing
        done = lambda: len(risk.times) == N and len(portfolio.times) == N  # noqa: E731
        await eventually(done, timeout=60, what="every message handled by both engines")
        transport = strategy.marketdata_transport
        stats = transport.stats() if transport is not None else {}
        failover = strategy.failover_status()
        report.notes = (
            "switch_s: the fault, from its start to the cluster ok again; publisher: "
            + ", ".join(f"{k} {v}" for k, v in stats.items() if k.startswith(("cluster", "pub")))
            + f"; via the outbox: {failover.get('failed_over', 0)}, replayed "
            f"{failover.get('replayed', 0)}"
        )
    finally:
        for client in [strategy, *clients]:
            await client.stop()
    report.sent = N
    report.max_publish_s = round(longest[0], 3)
    for name, tally in (("risk", risk), ("portfolio", portfolio)):
        report.count(name, list(tally.times.elements()), range(N))
    report.write()
    for name in ("risk", "portfolio"):
        assert report.receivers[name]["lost"] == 0, report.receivers
        assert report.receivers[name]["handled_twice"] == 0, report.receivers


async def test_a_coordinated_failover_of_an_inbox_master_loses_nothing(
    redis_cluster: LocalRedisCluster, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix, reconnect_max_backoff_s=0.2)
    report = FaultReport("cluster: CLUSTER FAILOVER of the master of an inbox")

    async def fail_over(_master: int, replica: int) -> None:
        await asyncio.to_thread(redis_cluster.failover, replica)

    await run_through(redis_cluster, settings, report, fail_over)


async def test_a_killed_inbox_master_loses_nothing_when_publishes_wait_for_a_replica(
    redis_cluster: LocalRedisCluster, key_prefix: str
) -> None:
    settings = Settings(
        key_prefix=key_prefix,
        redis_wait_replicas=1,
        redis_wait_timeout_ms=200,
        failover_after_s=0.5,
        reconnect_max_backoff_s=0.2,
        claim_idle_ms=2_000,
    )
    report = FaultReport("cluster: kill -9 of the master of an inbox (WAIT 1 replica)")

    async def kill(master: int, replica: int) -> None:
        redis_cluster.kill(master)
        await asyncio.to_thread(redis_cluster.wait_promoted, replica)
        # Back as the new master's replica: until then WAIT cannot be satisfied and
        # publishes to that master wait in the outbox.
        await asyncio.to_thread(redis_cluster.server(master).restart)
        await asyncio.to_thread(redis_cluster.wait_until_ok, len(redis_cluster.servers))

    await run_through(redis_cluster, settings, report, kill)


async def test_a_publisher_whose_slot_map_names_a_demoted_master_sends_to_the_new_one(
    redis_cluster: LocalRedisCluster, key_prefix: str
) -> None:
    """After a failover the publisher's slot map may still name the old master, now a
    replica: its writes come back MOVED and its WAIT is refused ("WAIT cannot be used with
    replica instances"). The publisher refreshes the map and sends again. (It used to fail
    the batch, and every replay of the outbox after it, for good.)"""
    settings = Settings(
        key_prefix=key_prefix, redis_wait_replicas=1, redis_wait_timeout_ms=1_000,
        reconnect_max_backoff_s=0.2,
    )  # fmt: skip
    master = redis_cluster.master_port_of(Keys(key_prefix).inbox(E.RISK, MessagePriority.NORMAL))
    replica = redis_cluster.replica_of(master)
    risk = Tally()
    subscriber = client_of(E.RISK, url=redis_cluster.url, settings=settings)
    await subscriber.subscribe("strategy.signals.*", risk)
    publisher = client_of(E.STRATEGY, url=redis_cluster.url, settings=settings)
    async with subscriber, publisher:
        await publisher.publish("strategy.signals.buy", {"n": 0})
        await eventually(lambda: risk.times[0] == 1, what="the message before the failover")
        await asyncio.to_thread(redis_cluster.failover, replica)
        await publisher.publish("strategy.signals.buy", {"n": 1})
        await eventually(lambda: risk.times[1] == 1, what="the message after the failover")
    assert dict(risk.times) == {0: 1, 1: 1}
