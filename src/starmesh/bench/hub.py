"""``starmesh bench hub``: market data through the hub, beside baselines from the same run.

- *l1*: ``get_data`` of a followed symbol, answered from the engine's L1 cache, one call at
  a time; baseline: awaiting a coroutine that reads a dict (the floor of any async lookup).
- *redis*: a hub in its own process on a private redis-server, 13 engine clients (one per
  engine type) in another, each with ``inflight`` requests under way (a sweep: latency and
  throughput trade against each other by Little's law), for quotes none of them follows
  (no L1): answered from the hub's snapshot keys while fresh, by the hub (a cache hit) when
  not; and again with ``snapshot_reads`` off, every call through the hub ("via hub");
  baseline: a bare redis-py request/reply server (a dict as cache) and clients. Each point
  also reports the CPU time per request of the clients, the server and redis-server: on a
  small machine they share the cores, and that cost is what bounds the rate.
- *zipf*: 13 engines asking for quotes of 500 symbols drawn from a Zipf law, for 60
  simulated seconds (a manual clock; real hub code); baseline: the same requests with a
  cache per engine instead of one shared hub: what each engine calling the sources gives.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from starmesh.bench.cpu import CpuMeter
from starmesh.bench.loops import LoopName, run_on
from starmesh.bench.stats import latency_summary
from starmesh.bus.redis.replies import streams
from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType, EngineType
from starmesh.core.payloads import MarketDataQuery
from starmesh.marketdata.client import MarketDataClient
from starmesh.marketdata.factory import create_marketdata_client, create_marketdata_hub
from starmesh.marketdata.sources.simulated import SimulatedSource
from starmesh.platform.process import settle_after_startup
from starmesh.testing import RedisServer

__all__ = ["TARGETS", "run_hub_bench"]

TARGETS = {
    "l1_calls_per_s": 200_000,
    "l1_p99_us": 20.0,
    "redis_requests_per_s": 20_000,
    "redis_p99_ms": 2.0,
    "zipf_hit_rate": 0.95,
    "zipf_upstream_share": 0.02,
}
_SYMBOLS = [f"SIM{n:04d}" for n in range(50)]
_YIELD_EVERY = 1_000


# --- L1 --------------------------------------------------------------------------------------


async def _l1(calls: int) -> dict[str, Any]:
    async with create_marketdata_hub(["simulated"]):
        client = create_marketdata_client(EngineType.STRATEGY)
        async with client:
            await client.subscribe("AAPL", DataType.QUOTE, lambda snapshot: None)
            ours = await _time_calls(calls, lambda: client.get_data("AAPL", DataType.QUOTE))
            assert client.stats()["l1_hits"] >= calls
    table = {("AAPL", DataType.QUOTE): object()}

    async def lookup() -> object:
        return table.get(("AAPL", DataType.QUOTE))

    base = await _time_calls(calls, lookup)
    return {"starmesh": ours, "baseline_async_dict_lookup": base}


async def _time_calls(calls: int, call: Any) -> dict[str, Any]:
    samples = []
    clock = time.perf_counter_ns
    started = clock()
    for n in range(calls):
        before = clock()
        await call()
        samples.append(clock() - before)
        if n % _YIELD_EVERY == _YIELD_EVERY - 1:
            # An L1 hit never waits, so without this the hub's updates would never be
            # delivered and the followed quote would outlive its TTL (1 s) on a slow machine;
            # an engine's loop gives them their turn between its handlers.
            await asyncio.sleep(0)
    elapsed = (clock() - started) / 1e9
    return {"calls_per_s": round(calls / elapsed), **latency_summary(samples)}


# --- through the hub over Redis --------------------------------------------------------------


class _Server:
    def __init__(self, impl: str, url: str, prefix: str, loop: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "starmesh.bench.hub_server", impl, url, prefix, "--loop", loop],
            stdout=subprocess.PIPE,
            text=True,
        )

    async def ready(self) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"bench server failed to start: {line!r}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        if self.process.stdout is not None:
            self.process.stdout.close()


async def _drive(
    seconds: float, inflight: int, clients: int, ask: Any, meter: CpuMeter
) -> dict[str, Any]:
    """Run ``clients`` x ``inflight`` loops calling ``ask(client, n)`` for ``seconds``."""
    samples: list[int] = []
    deadline = time.perf_counter() + seconds
    clock = time.perf_counter_ns

    async def loop(client: int, lane: int) -> None:
        n = lane
        while time.perf_counter() < deadline:
            before = clock()
            await ask(client, n)
            samples.append(clock() - before)
            n += inflight

    started = time.perf_counter()
    meter.start()
    await asyncio.gather(*(loop(c, k) for c in range(clients) for k in range(inflight)))
    used = meter.stop()
    elapsed = time.perf_counter() - started
    summary = latency_summary(samples)
    cpu_us = {name: round(s / len(samples) * 1e6, 1) for name, s in used.items()}
    cpu_us["total"] = round(sum(cpu_us.values()), 1)
    return {
        "requests_per_s": round(len(samples) / elapsed),
        "requests": len(samples),
        **summary,
        "cpu_us_per_request": cpu_us,
        "cores_used": round(sum(used.values()) / elapsed, 2),
    }


def _meter(server: _Server, redis_pid: int | None) -> CpuMeter:
    pids = {"clients": os.getpid(), "server": server.process.pid}
    if redis_pid is not None:
        pids["redis"] = redis_pid
    return CpuMeter(pids)


async def _starmesh_over_redis(
    url: str,
    seconds: float,
    inflight: int,
    loop: str,
    redis_pid: int | None,
    *,
    snapshot_reads: bool = True,
) -> dict[str, Any]:
    prefix = f"benchhub{uuid.uuid4().hex[:8]}"
    server = _Server("starmesh", url, prefix, loop)
    await server.ready()
    settings = Settings(key_prefix=prefix, snapshot_reads=snapshot_reads)
    clients: list[MarketDataClient] = [
        create_marketdata_client(engine, url=url, settings=settings) for engine in EngineType
    ]
    try:
        for client in clients:
            await client.start()
        settle_after_startup()  # as an engine process does
        await clients[0].get_data(_SYMBOLS, DataType.QUOTE)  # warm the hub's cache

        async def ask(client: int, n: int) -> None:
            await clients[client].get_data(_SYMBOLS[n % len(_SYMBOLS)], DataType.QUOTE)

        return await _drive(seconds, inflight, len(clients), ask, _meter(server, redis_pid))
    finally:
        for client in clients:
            await client.stop()
        server.stop()


async def _baseline_over_redis(
    url: str, seconds: float, inflight: int, loop: str, redis_pid: int | None
) -> dict[str, Any]:
    import msgspec

    prefix = f"benchbase{uuid.uuid4().hex[:8]}"
    server = _Server("baseline", url, prefix, loop)
    await server.ready()
    redis = aioredis.Redis.from_url(url, socket_timeout=None)
    requests = f"{prefix}:baseline:requests"
    pending: dict[tuple[int, int], asyncio.Future[bytes]] = {}
    engines = len(EngineType)
    counter = iter(range(10**12))

    async def read_replies(client: int) -> None:
        reader = aioredis.Redis.from_url(url, socket_timeout=None)
        key, last = f"{prefix}:baseline:reply:{client}", b"0-0"
        try:
            while True:
                reply = await reader.xread({key: last}, count=256, block=1000)
                for _stream, entries in streams(reply):
                    for entry_id, fields in entries:
                        last = entry_id
                        future = pending.pop((client, int((fields or {})[b"id"])), None)
                        if future is not None and not future.done():
                            future.set_result((fields or {})[b"m"])
        finally:
            await reader.aclose()

    readers = [asyncio.create_task(read_replies(c)) for c in range(engines)]
    encode = msgspec.msgpack.encode

    async def ask(client: int, n: int) -> None:
        request_id = next(counter)
        future = asyncio.get_running_loop().create_future()
        pending[(client, request_id)] = future
        body = {"client": str(client), "id": request_id, "symbol": _SYMBOLS[n % len(_SYMBOLS)]}
        await redis.xadd(requests, {"m": encode(body)}, maxlen=100_000)
        await future

    try:
        return await _drive(seconds, inflight, engines, ask, _meter(server, redis_pid))
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await redis.aclose()
        server.stop()


# --- Zipf over 500 symbols -------------------------------------------------------------------


async def _zipf(
    engines: int, rate: float, symbols: int, seconds: float, exponent: float, seed: int
) -> dict[str, Any]:
    clock = ManualClock()
    names = [f"SIM{n:04d}" for n in range(symbols)]
    source = SimulatedSource(clock=clock)
    hub = create_marketdata_hub([source], clock=clock, settings=Settings(key_prefix="zipf"))
    ttl = hub.settings.cache_ttl_s[DataType.QUOTE]
    weights = 1.0 / np.arange(1, symbols + 1) ** exponent
    probabilities = weights / weights.sum()
    queries = [MarketDataQuery(symbols=[name], data_types=[DataType.QUOTE]) for name in names]
    rng = np.random.default_rng(seed)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    own_caches: list[dict[str, float]] = [{} for _ in range(engines)]
    own_upstream = 0
    engine_names = [e.value for e in list(EngineType)[:engines]]
    per_second = round(1 / tick)
    hit_rates: list[float] = []
    last_hits = last_lookups = 0
    async with hub:
        for step in range(round(seconds / tick)):
            for engine in range(engines):
                drawn = rng.choice(symbols, size=per_tick, p=probabilities)
                now, cache = clock.monotonic(), own_caches[engine]
                for index in drawn:  # one request, one symbol: each is counted
                    symbol = names[index]
                    await hub.get(queries[index], engine=engine_names[engine])
                    if cache.get(symbol, -1.0) <= now:  # the same request, the engine's own cache
                        cache[symbol] = now + ttl
                        own_upstream += 1
            clock.advance(tick)
            await hub.idle()
            if (step + 1) % per_second == 0:  # the hit rate of each simulated second
                so_far = hub.stats()
                hits = so_far["cache_hits"]
                lookups = hits + so_far["cache_misses"]
                asked = lookups - last_lookups
                hit_rates.append(round((hits - last_hits) / asked, 4) if asked else 0.0)
                last_hits, last_lookups = hits, lookups
        stats = hub.stats()
    requests = stats["requests"]
    return {
        "engines": engines,
        "requests_per_engine_per_s": rate,
        "symbols": symbols,
        "zipf_exponent": exponent,
        "simulated_seconds": seconds,
        "quote_ttl_s": ttl,
        "requests": requests,
        "starmesh_hub": {
            "hit_rate": stats["hit_rate"],
            "upstream_calls": stats["upstream_total"],
            "upstream_share": round(stats["upstream_total"] / requests, 4),
            "refreshes_ahead": stats["refreshes_ahead"],
        },
        "hit_rate_per_s": hit_rates,
        "baseline_cache_per_engine": {
            "upstream_calls": own_upstream,
            "upstream_share": round(own_upstream / requests, 4),
        },
    }


# --- the whole run ---------------------------------------------------------------------------


def run_hub_bench(
    *,
    url: str | None,
    calls: int,
    seconds: float,
    inflight: list[int],
    zipf_rate: float,
    zipf_seconds: float,
    loops: list[LoopName],
) -> dict[str, Any]:
    server = None if url else RedisServer().start()
    target = url or (server.url if server else "")
    redis_pid = server.pid if server else None  # a --url server may be elsewhere: not measured
    results: dict[str, Any] = {}
    try:
        for loop in loops:
            points = []
            for depth in inflight:
                ours = run_on(loop, _starmesh_over_redis(target, seconds, depth, loop, redis_pid))
                base = run_on(loop, _baseline_over_redis(target, seconds, depth, loop, redis_pid))
                hub = run_on(
                    loop,
                    _starmesh_over_redis(
                        target, seconds, depth, loop, redis_pid, snapshot_reads=False
                    ),
                )
                points.append(
                    {
                        "inflight_per_client": depth,
                        "starmesh": ours,
                        "baseline_redis_py": base,
                        "starmesh_via_hub": hub,
                        "starmesh_over_baseline": round(
                            ours["requests_per_s"] / base["requests_per_s"], 3
                        ),
                        "via_hub_over_baseline": round(
                            hub["requests_per_s"] / base["requests_per_s"], 3
                        ),
                    }
                )
            results[loop] = {
                "l1": run_on(loop, _l1(calls)),
                "over_redis": {"clients": len(EngineType), "points": points},
            }
        zipf = run_on("asyncio", _zipf(len(EngineType), zipf_rate, 500, zipf_seconds, 1.1, seed=7))
    finally:
        if server is not None:
            server.stop()
    results["zipf"] = zipf
    results["best"] = best = _best(results, loops)
    results["targets_met"] = {
        "l1_throughput": best["l1_calls_per_s"] >= TARGETS["l1_calls_per_s"],
        "l1_p99": best["l1_p99_us"] <= TARGETS["l1_p99_us"],
        "redis_throughput": best["redis_requests_per_s"] >= TARGETS["redis_requests_per_s"],
        "redis_p99_at_that_rate": best["redis_p99_ms_at_target_rate"] is not None
        and best["redis_p99_ms_at_target_rate"] <= TARGETS["redis_p99_ms"],
        "zipf_hit_rate": zipf["starmesh_hub"]["hit_rate"] >= TARGETS["zipf_hit_rate"],
        "zipf_upstream_share": zipf["starmesh_hub"]["upstream_share"]
        <= TARGETS["zipf_upstream_share"],
    }
    return results


def _best(results: dict[str, Any], loops: list[LoopName]) -> dict[str, Any]:
    """The best figures of the run. The p99 target holds only together with the rate, so it
    is read at points that reached the rate; the cores figure is what the target rate would
    take at the cheapest CPU cost per request measured (the machine has ``cpus``).
    """
    points = [p["starmesh"] for lp in loops for p in results[lp]["over_redis"]["points"]]
    rate = TARGETS["redis_requests_per_s"]
    at_rate = [p["p99_us"] / 1000 for p in points if p["requests_per_s"] >= rate]
    return {
        "l1_calls_per_s": max(results[lp]["l1"]["starmesh"]["calls_per_s"] for lp in loops),
        "l1_p99_us": min(results[lp]["l1"]["starmesh"]["p99_us"] for lp in loops),
        "redis_requests_per_s": max(p["requests_per_s"] for p in points),
        "redis_p99_ms": min(p["p99_us"] for p in points) / 1000,
        "redis_p99_ms_at_target_rate": min(at_rate) if at_rate else None,
        "redis_cores_for_target_rate": round(
            min(p["cpu_us_per_request"]["total"] for p in points) * rate / 1e6, 2
        ),
        "cpus": os.cpu_count(),
    }
