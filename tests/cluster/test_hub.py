"""The MarketData Bus on a Redis Cluster: the hub (under its lease) serves and broadcasts, and
every key it writes lives on one master (each write checks the lease in the same script)."""

from __future__ import annotations

from starmesh import (
    DataType,
    EngineType,
    Settings,
    create_marketdata_client,
    create_marketdata_hub,
)
from starmesh.bus.redis.keys import Keys
from starmesh.core.payloads import Snapshot
from starmesh.testing import LocalRedisCluster
from tests.helpers import eventually

Q = DataType.QUOTE


async def test_the_hub_serves_and_broadcasts_on_a_cluster(
    redis_cluster: LocalRedisCluster, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix)
    url = redis_cluster.url
    hub = create_marketdata_hub(["simulated"], url=url, settings=settings)
    engine = create_marketdata_client(
        EngineType.STRATEGY, url=url, settings=settings, hub_http_url="http://127.0.0.1:9"
    )
    other = create_marketdata_client(
        EngineType.RISK, url=url, settings=settings, hub_http_url="http://127.0.0.1:9"
    )
    updates: list[Snapshot] = []
    async with hub, engine, other:
        assert hub.leadership is not None
        assert hub.leadership.active
        answer = await engine.get_data(["AAPL", "MSFT"], Q)
        assert {s: answer[s][Q].epoch for s in answer} == {"AAPL": hub.epoch, "MSFT": hub.epoch}
        # Another engine reads both from their snapshot keys (one MGET on the {md} master).
        read = await other.get_data(["AAPL", "MSFT"], Q)
        assert {s: read[s][Q].seq for s in read} == {s: answer[s][Q].seq for s in answer}
        assert (other.stats()["snapshot_hits"], other.stats()["bus_requests"]) == (2, 0)
        await engine.subscribe("NVDA", Q, updates.append)  # the hub streams it
        await eventually(lambda: len(updates) >= 10, timeout=20, what="ten NVDA updates")
        seqs = [s.seq for s in updates]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every one, in order
        assert engine.stats()["bus_requests"] >= 1
        assert (await engine.get_data("NVDA", Q))["NVDA"][Q].seq >= seqs[-1]  # from L1
    keys = Keys(key_prefix)
    written = [
        keys.broadcast, keys.snapshot("marketdata.quote.NVDA"), keys.hub_lease, keys.hub_fence,
        keys.hub_streams, keys.hubs,
    ]  # fmt: skip
    assert len({redis_cluster.master_port_of(key) for key in written}) == 1
