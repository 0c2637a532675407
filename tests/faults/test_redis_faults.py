"""Redis crashes and restarts, a subscriber killed, a slow subscriber: nothing lost, nothing
handled twice where the design promises it, and the numbers noted (``bench-results/``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from starmesh import EngineType, MessageBusClient, create_messagebus_client
from starmesh.testing import RedisServer
from tests.faults.conftest import Watch
from tests.faults.harness import Engine, FaultReport
from tests.faults.settings import fault_settings
from tests.helpers import eventually

TOPIC = "strategy.signals.buy"


async def publish(
    publisher: MessageBusClient, numbers: range, report: FaultReport, pace: float = 0.002
) -> None:
    """Publish ``{"n": n}`` for each n, paced so faults land mid-stream; notes the longest
    publish call (it never raises: the outbox takes what Redis cannot)."""
    for n in numbers:
        started = time.perf_counter()
        await publisher.publish(TOPIC, {"n": n})
        report.max_publish_s = round(max(report.max_publish_s, time.perf_counter() - started), 4)
        report.sent += 1
        await asyncio.sleep(pace)


async def start_subscribers(
    url: str,
    prefix: str,
    tmp: Path,
    engines: list[Engine],
    *delays: float,
    options: tuple[str, ...] = (),
) -> list[Engine]:
    kinds = ["portfolio", "risk"]
    started = [
        Engine(kind, url, prefix, f"{kind}-1", tmp, "--delay", str(delay), *options)
        for kind, delay in zip(kinds, delays or (0.0, 0.0), strict=False)
    ]
    engines.extend(started)
    for engine in started:
        await engine.ready()
    return started


def on_bus(publisher: MessageBusClient) -> bool:
    status = publisher.failover_status()
    return bool(status["route"] == "bus" and status["paths"]["bus"]["state"] == "up")


async def all_handled(subscribers: list[Engine], count: int, timeout: float = 60.0) -> None:
    try:
        await eventually(
            lambda: all(set(s.handled()) >= set(range(count)) for s in subscribers),
            timeout=timeout, what=f"{count} messages handled by every subscriber",
        )  # fmt: skip
    except AssertionError as exc:
        missing = {s.instance: sorted(set(range(count)) - set(s.handled())) for s in subscribers}
        raise AssertionError(f"{exc}; missing: {missing}") from None


def all_fetched(url: str, inbox: str, group: str) -> Callable[[], Awaitable[bool]]:
    """Whether ``group`` has fetched every entry of ``inbox`` (handled or not)."""

    async def check() -> bool:
        async with aioredis.Redis.from_url(url) as admin:
            groups = await admin.xinfo_groups(inbox)
        return any(g["name"] == group.encode() and g["lag"] == 0 for g in groups)

    return check


async def test_redis_killed_and_restarted_with_aof_loses_nothing(
    key_prefix: str, tmp_path: Path, engines: list[Engine]
) -> None:
    """Fault 1: Redis (AOF always) is killed while a publisher publishes to two subscriber
    processes, and restarted: each subscriber handles every message exactly once."""
    redis = RedisServer(aof=True).start()
    report = FaultReport("redis killed, restarted with AOF")
    try:
        subscribers = await start_subscribers(redis.url, key_prefix, tmp_path, engines)
        settings = fault_settings(key_prefix)
        async with create_messagebus_client(
            EngineType.STRATEGY, url=redis.url, settings=settings
        ) as publisher:
            await publish(publisher, range(200), report)
            redis.kill()
            switch = Watch(lambda: publisher.failover_status()["sent_over_http"] > 0)
            await publish(publisher, range(200, 400), report)
            redis.restart()
            recover = Watch(lambda: on_bus(publisher))
            await publish(publisher, range(400, 600), report)
            await all_handled(subscribers, 600)
            await eventually(lambda: recover.took is not None, what="back on the bus")
            report.switch_s, report.recover_s = switch.took, recover.took
            status = publisher.failover_status()
            report.notes = (
                f"{status['sent_over_http']} over HTTP, {status['replayed']} replayed; "
                f"bus switches {status['paths']['bus']['switches']}"
            )
        for subscriber in subscribers:
            report.count(subscriber.instance, subscriber.handled(), range(600))
    finally:
        redis.stop()
        report.write()
    for counts in report.receivers.values():
        assert (counts["lost"], counts["handled_twice"]) == (0, 0), report
    assert report.sent == 600


async def test_redis_restarting_empty_recreates_groups_and_drains_the_outbox(
    redis_alone: RedisServer, key_prefix: str, tmp_path: Path, engines: list[Engine]
) -> None:
    """Fault 2: Redis comes back empty (no persistence): groups and registry are recreated,
    the outbox drains, nothing hangs. (What Redis held unread when it died is gone with it:
    the test kills it once the subscribers have caught up, so the count is exact.)"""
    report = FaultReport("redis restarted empty")
    subscribers = await start_subscribers(redis_alone.url, key_prefix, tmp_path, engines)
    # No HTTP for the risk engine's messages: those wait in the outbox for Redis.
    subscribers[1].kill()
    settings = fault_settings(key_prefix)
    try:
        async with create_messagebus_client(
            EngineType.STRATEGY, url=redis_alone.url, settings=settings
        ) as publisher:
            await publish(publisher, range(100), report)
            await all_handled(subscribers[:1], 100)
            redis_alone.kill()
            switch = Watch(lambda: publisher.failover_status()["sent_over_http"] > 0)
            await publish(publisher, range(100, 300), report)
            assert publisher.failover_status()["outbox"]["depth"] >= 200  # risk's entries
            redis_alone.restart()
            recover = Watch(lambda: on_bus(publisher))
            subscribers[1].restart()  # the risk engine comes back onto an empty Redis
            await subscribers[1].ready()
            await publish(publisher, range(300, 400), report)
            await all_handled(subscribers[:1], 400)
            await eventually(lambda: recover.took is not None, what="back on the bus")
            await eventually(
                lambda: set(subscribers[1].handled()) >= set(range(100, 400)),
                timeout=60, what="the risk engine's outbox entries delivered",
            )  # fmt: skip
            report.switch_s, report.recover_s = switch.took, recover.took
            report.notes = f"replayed {publisher.failover_status()['replayed']} into the new Redis"
        report.count(subscribers[0].instance, subscribers[0].handled(), range(400))
        report.count(subscribers[1].instance, subscribers[1].handled(), range(100, 400))
    finally:
        report.write()
    for counts in report.receivers.values():
        assert (counts["lost"], counts["handled_twice"]) == (0, 0), report


@pytest.mark.parametrize("effects", ["plain", "once"])
async def test_a_subscriber_killed_mid_stream_handles_its_unacked_messages_on_restart(
    redis_server: RedisServer, key_prefix: str, tmp_path: Path, engines: list[Engine], effects: str
) -> None:
    """Fault 3: kill -9 of a subscriber mid-stream, then a restart under the same name: what
    it held unacknowledged is handled. A plain handler gets at least once: a message whose
    handler finished but whose ack had not left yet runs again; the count is noted. A handler
    that commits through :class:`ProcessedMessages` has its effects exactly once."""
    report = FaultReport(f"subscriber kill -9, restarted ({effects} handler)")
    options = ("--once",) if effects == "once" else ()
    (subscriber,) = await start_subscribers(
        redis_server.url, key_prefix, tmp_path, engines, 0.001, options=options
    )
    settings = fault_settings(key_prefix)
    try:
        async with create_messagebus_client(
            EngineType.STRATEGY, url=redis_server.url, settings=settings
        ) as publisher:
            publishing = asyncio.create_task(publish(publisher, range(1_000), report, 0.0005))
            await eventually(lambda: len(subscriber.handled()) >= 300, what="300 handled")
            subscriber.kill()
            killed_at = time.monotonic()
            await publishing
            subscriber.restart()
            await subscriber.ready()
            await all_handled([subscriber], 1_000)
            report.recover_s = round(time.monotonic() - killed_at, 3)
            report.notes = "recover_s: from the kill to every message handled"
        report.count(subscriber.instance, subscriber.handled(), range(1_000))
    finally:
        report.write()
    counts = report.receivers[subscriber.instance]
    assert counts["lost"] == 0, report
    if effects == "once":
        assert counts["handled_twice"] == 0, report
    else:  # at most what was handled but not yet acknowledged when it died: one read's worth
        assert counts["handled_twice"] <= settings.read_count, report


@pytest.mark.parametrize(("effects", "times_handled"), [("plain", 2), ("once", 1)])
async def test_a_crash_between_the_handler_and_the_ack(
    redis_server: RedisServer,
    key_prefix: str,
    tmp_path: Path,
    engines: list[Engine],
    effects: str,
    times_handled: int,
) -> None:
    """The subscriber kills itself the instant message 50 is handled, before the bus can
    acknowledge it, and is restarted: the message comes again. A plain handler runs it twice
    (the transport is at least once); one that commits through ProcessedMessages skips the
    copy, so its effect is there once."""
    options = ("--die-after", "50", *(("--once",) if effects == "once" else ()))
    (subscriber,) = await start_subscribers(
        redis_server.url, key_prefix, tmp_path, engines, 0.0, options=options
    )
    report = FaultReport(f"subscriber crash between handler and ack ({effects} handler)")
    settings = fault_settings(key_prefix)
    try:
        async with create_messagebus_client(
            EngineType.STRATEGY, url=redis_server.url, settings=settings
        ) as publisher:
            await publish(publisher, range(100), report, 0.0)
            await eventually(subscriber.died, what="the subscriber killed itself after 50")
            subscriber.kill()  # reaps it
            subscriber.restart()
            await subscriber.ready()
            await all_handled([subscriber], 100)
        handled = subscriber.handled()
        report.count(subscriber.instance, handled, range(100))
    finally:
        report.write()
    assert handled.count(50) == times_handled, report
    counts = report.receivers[subscriber.instance]
    assert counts["lost"] == 0, report
    if effects == "once":
        assert counts["handled_twice"] == 0, report


async def test_a_slow_subscriber_slows_neither_the_others_nor_the_publisher(
    redis_alone: RedisServer, key_prefix: str, tmp_path: Path, engines: list[Engine]
) -> None:
    """Fault 5: one subscriber takes 20 ms a message, over Redis and then over HTTP during an
    outage. The publisher's calls and the fast subscriber finish while the slow one is far
    behind: fan-out on write, and one HTTP sender per engine."""
    report = FaultReport("slow subscriber")
    fast, slow = await start_subscribers(redis_alone.url, key_prefix, tmp_path, engines, 0.0, 0.02)
    settings = fault_settings(key_prefix)
    try:
        async with create_messagebus_client(
            EngineType.STRATEGY, url=redis_alone.url, settings=settings
        ) as publisher:
            await publish(publisher, range(200), report, pace=0.0)
            await all_handled([fast], 200)
            behind_on_bus = 200 - len(set(slow.handled()))
            # Redis comes back empty: what the slow one had not yet *fetched* would die with
            # it (by design, without AOF). Kill it once everything is in the slow one's buffer.
            await eventually(
                all_fetched(redis_alone.url, f"{key_prefix}:{{risk}}:inbox:normal", "risk"),
                what="the slow subscriber fetching all 200",
            )
            redis_alone.kill()
            await publish(publisher, range(200, 400), report, pace=0.0)
            await all_handled([fast], 400)
            behind_on_http = 400 - len(set(slow.handled()))
            redis_alone.restart()
            await all_handled([fast, slow], 400, timeout=90)
            report.notes = (
                f"when the fast one had all: slow one behind by {behind_on_bus} (bus), "
                f"{behind_on_http} (HTTP)"
            )
        report.count(fast.instance, fast.handled(), range(400))
        report.count(slow.instance, slow.handled(), range(400))
    finally:
        report.write()
    assert behind_on_bus > 0
    assert behind_on_http > 0
    for counts in report.receivers.values():
        assert (counts["lost"], counts["handled_twice"]) == (0, 0), report
