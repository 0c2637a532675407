"""Fault 6: the network between engines and Redis fails rather than Redis: a TCP proxy the
test controls is slowed, blackholed (half-open) and cut. The same no-loss property holds."""

from __future__ import annotations

from pathlib import Path

from starmesh import EngineType, create_messagebus_client
from starmesh.testing import RedisServer
from tests.faults.conftest import Watch
from tests.faults.harness import Engine, FaultReport
from tests.faults.proxy import TcpProxy
from tests.faults.settings import fault_settings
from tests.faults.test_redis_faults import all_handled, on_bus, publish, start_subscribers


async def test_no_loss_through_delay_half_open_and_cut_links(
    redis_alone: RedisServer, key_prefix: str, tmp_path: Path, engines: list[Engine]
) -> None:
    report = FaultReport("network: delayed, half-open, then cut")
    proxy = await TcpProxy(redis_alone.port).start()
    try:
        subscribers = await start_subscribers(proxy.url, key_prefix, tmp_path, engines)
        async with create_messagebus_client(
            EngineType.STRATEGY, url=proxy.url, settings=fault_settings(key_prefix)
        ) as publisher:
            await publish(publisher, range(100), report)
            proxy.delay(0.05)  # slower than usual, well within the failover delay
            await publish(publisher, range(100, 200), report)
            proxy.blackhole()
            switch = Watch(lambda: publisher.failover_status()["sent_over_http"] > 0)
            await publish(publisher, range(200, 300), report)
            proxy.heal()
            healed = Watch(lambda: on_bus(publisher))
            await publish(publisher, range(300, 400), report)
            proxy.drop()
            await publish(publisher, range(400, 500), report)
            proxy.heal()
            await publish(publisher, range(500, 600), report)
            await all_handled(subscribers, 600, timeout=90)
            report.switch_s, report.recover_s = switch.took, healed.took
            status = publisher.failover_status()
            report.notes = (
                f"{status['sent_over_http']} over HTTP, {status['replayed']} replayed; "
                f"bus switches {status['paths']['bus']['switches']}; recover_s: blackhole healed"
                " -> back on the bus"
            )
        for subscriber in subscribers:
            report.count(subscriber.instance, subscriber.handled(), range(600))
    finally:
        await proxy.close()
        report.write()
    for counts in report.receivers.values():
        assert (counts["lost"], counts["handled_twice"]) == (0, 0), report
