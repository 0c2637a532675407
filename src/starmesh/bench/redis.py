"""``starmesh bench redis``: engine -> engine over Redis Streams, in two OS processes.

Each measurement runs starmesh and a baseline in the same run, against the same private
redis-server (started here unless ``url`` is given), the receiver in a child process
(:mod:`starmesh.bench.redis_peer`):

- *latency*: one message at a time at ``rate`` msg/s; one-way ``ts_publish`` -> handler.
  Baseline: ``XADD`` awaited per message -> ``XREADGROUP``/``XACK`` loop.
- *throughput*: ``messages`` published by 256 concurrent publishers; msg/s from the first
  publish to the receiver handling the last, and every one acknowledged (zero pending).
  Baseline: redis-py pipelines of 1,000 ``XADD`` -> the same loop.
- *flash*: ``backlog`` NORMAL messages wait for an engine that restarts; while it works
  through them, 20 FLASH_CRASH messages are sent 5 ms apart: how long until each is
  handled, and how much of the backlog went first. Baseline: the same on one FIFO stream
  (what having no priorities gives).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from starmesh.bench.loops import LoopName, run_on
from starmesh.bench.pacing import send_paced
from starmesh.bench.stats import latency_summary
from starmesh.bus.redis.replies import as_bytes
from starmesh.client import MessageBusClient, create_messagebus_client
from starmesh.core.codec import MessageCodec
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType, MessagePriority, MessageType
from starmesh.core.ids import message_id
from starmesh.core.message import Message
from starmesh.testing import RedisServer

__all__ = [
    "PAYLOAD",
    "TARGETS",
    "Peer",
    "baseline_latency",
    "baseline_throughput",
    "bench_client",
    "pending_count",
    "publish_concurrently",
    "redis_version",
    "run_redis_bench",
    "starmesh_latency",
    "starmesh_throughput",
    "throughput_of",
    "wire_message",
]

TARGETS = {
    "latency_p50_us": 250.0,
    "latency_p99_us": 1_000.0,
    "throughput_msgs_per_s": 100_000,
    "flash_latency_ms": 2.0,
}
PAYLOAD = {"symbol": "AAPL", "action": "BUY", "quantity": 100}
_WARMUP = 500
_PUBLISHERS = 256
_FLASHES = 20
_FLASH_EVERY_S = 0.005
"""FLASH_CRASH messages go out this often once the receiver has started on its backlog."""


class Peer:
    def __init__(self, impl: str, mode: str, url: str, prefix: str, expected: int, loop: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "starmesh.bench.redis_peer", impl, mode, url, prefix,
             str(expected), "--loop", loop],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    async def ready(self) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"bench peer failed to start: {line!r}")

    async def result(self, timeout: float = 300) -> dict[str, Any]:
        out, _ = await asyncio.wait_for(asyncio.to_thread(self.process.communicate), timeout)
        if self.process.returncode != 0:
            raise RuntimeError(f"bench peer exited with {self.process.returncode}")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result


def bench_client(
    engine: EngineType, url: str, prefix: str, instance: str | None = None
) -> MessageBusClient:
    return create_messagebus_client(
        engine, url=url, instance=instance, settings=Settings(key_prefix=prefix)
    )


def wire_message(codec: MessageCodec, priority: MessagePriority = MessagePriority.NORMAL) -> bytes:
    """A starmesh message encoded at this instant: the baseline moves the same bytes."""
    now = time.time_ns()
    return codec.encode(
        Message(
            id=message_id(now), topic="bench.baseline", type=MessageType.EVENT,
            source=EngineType.STRATEGY, instance="bench", priority=priority,
            ts_event=now, ts_publish=now, payload=PAYLOAD,
        )
    )  # fmt: skip


async def publish_concurrently(bus: MessageBusClient, count: int, topic: str) -> None:
    async def publisher(first: int) -> None:
        for _ in range(first, count, _PUBLISHERS):
            await bus.publish(topic, PAYLOAD)

    await asyncio.gather(*(publisher(k) for k in range(_PUBLISHERS)))


# --- latency ---------------------------------------------------------------------------------


async def starmesh_latency(
    url: str, prefix: str, rate: float, count: int, loop: str
) -> dict[str, Any]:
    peer = Peer("starmesh", "latency", url, prefix, count, loop)
    await peer.ready()
    async with bench_client(EngineType.STRATEGY, url, prefix) as bus:
        await send_paced(count, rate, lambda _: bus.publish("bench.latency", PAYLOAD))
    return latency_summary((await peer.result())["latencies_ns"][_WARMUP:])


async def baseline_latency(
    url: str, prefix: str, rate: float, count: int, loop: str
) -> dict[str, Any]:
    peer = Peer("baseline", "latency", url, prefix, count, loop)
    await peer.ready()
    redis = aioredis.Redis.from_url(url)
    codec = MessageCodec()
    stream = f"{prefix}:baseline"
    await send_paced(count, rate, lambda _: redis.xadd(stream, {"m": wire_message(codec)}))
    await redis.aclose()
    return latency_summary((await peer.result())["latencies_ns"][_WARMUP:])


# --- throughput ------------------------------------------------------------------------------


async def pending_count(url: str, key: str, group: str) -> int:
    redis = aioredis.Redis.from_url(url)
    try:
        summary = await redis.xpending(key, group)
        return int(summary["pending"])
    finally:
        await redis.aclose()


async def starmesh_throughput(url: str, prefix: str, messages: int, loop: str) -> dict[str, Any]:
    peer = Peer("starmesh", "throughput", url, prefix, messages, loop)
    await peer.ready()
    async with bench_client(EngineType.STRATEGY, url, prefix) as bus:
        started = time.time_ns()
        await publish_concurrently(bus, messages, "bench.throughput")
    result = await peer.result()
    pending = await pending_count(url, f"{prefix}:{{portfolio}}:inbox:normal", "portfolio")
    return throughput_of(messages, started, result, pending)


async def baseline_throughput(url: str, prefix: str, messages: int, loop: str) -> dict[str, Any]:
    peer = Peer("baseline", "throughput", url, prefix, messages, loop)
    await peer.ready()
    redis = aioredis.Redis.from_url(url)
    codec = MessageCodec()
    stream = f"{prefix}:baseline"
    started = time.time_ns()
    for first in range(0, messages, 1_000):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(first, min(first + 1_000, messages)):
                pipe.xadd(stream, {"m": wire_message(codec)})
            await pipe.execute()
    await redis.aclose()
    result = await peer.result()
    return throughput_of(messages, started, result, await pending_count(url, stream, "bench"))


def throughput_of(
    messages: int, started_ns: int, result: dict[str, Any], pending: int
) -> dict[str, Any]:
    seconds = (result["last_ns"] - started_ns) / 1e9
    return {
        "messages": messages,
        "handled": result["count"],
        "pending_after": pending,
        "zero_loss": result["count"] == messages and pending == 0,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(messages / seconds),
    }


# --- a FLASH_CRASH message behind a backlog -------------------------------------------------


async def _starmesh_flash(url: str, prefix: str, backlog: int, loop: str) -> dict[str, Any]:
    registrar = bench_client(EngineType.PORTFOLIO, url, prefix, instance="bench-registrar")
    await registrar.subscribe("bench.*", lambda message: None)
    async with registrar:
        pass  # the engine's subscription stays registered: the backlog waits for it
    async with bench_client(EngineType.STRATEGY, url, prefix) as bus:
        await publish_concurrently(bus, backlog, "bench.backlog")
        peer = Peer("starmesh", "flash", url, prefix, backlog + _FLASHES, loop)
        await peer.ready()
        for _ in range(_FLASHES):
            await asyncio.sleep(_FLASH_EVERY_S)  # the receiver is busy, its buffer full
            await bus.publish("bench.flash", PAYLOAD, priority=MessagePriority.FLASH_CRASH)
        result = await peer.result()
    return _flash(backlog, result)


async def _baseline_flash(url: str, prefix: str, backlog: int, loop: str) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(url)
    codec = MessageCodec()
    stream = f"{prefix}:baseline"
    for first in range(0, backlog, 1_000):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(first, min(first + 1_000, backlog)):
                pipe.xadd(stream, {"m": wire_message(codec)})
            await pipe.execute()
    peer = Peer("baseline", "flash", url, prefix, backlog + _FLASHES, loop)
    await peer.ready()
    for _ in range(_FLASHES):
        await asyncio.sleep(_FLASH_EVERY_S)
        await redis.xadd(stream, {"m": wire_message(codec, MessagePriority.FLASH_CRASH)})
    await redis.aclose()
    return _flash(backlog, await peer.result())


def _to_ms(us: float | list[float]) -> float | list[float]:
    return [v / 1000 for v in us] if isinstance(us, list) else us / 1000


def _flash(backlog: int, result: dict[str, Any]) -> dict[str, Any]:
    latency = latency_summary(result["flash_latencies_ns"])
    return {
        "backlog": backlog,
        "flash_messages": len(result["flash_latencies_ns"]),
        "latency_ms": {k: _to_ms(v) if k.endswith("_us") else v for k, v in latency.items()},
        "backlog_handled_before_each": result["handled_before_flash"],
    }


# --- the whole run ---------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("nan")


def run_redis_bench(
    *,
    url: str | None,
    rate: float,
    seconds: float,
    messages: int,
    backlog: int,
    loops: list[LoopName],
) -> dict[str, Any]:
    server = None if url else RedisServer().start()
    target = url or (server.url if server else "")
    count = int(rate * seconds) + _WARMUP
    results: dict[str, Any] = {"redis": redis_version(target)}
    try:
        for loop in loops:

            def prefix() -> str:
                return f"bench{uuid.uuid4().hex[:8]}"

            ours = run_on(loop, starmesh_latency(target, prefix(), rate, count, loop))
            base = run_on(loop, baseline_latency(target, prefix(), rate, count, loop))
            ours_tp = run_on(loop, starmesh_throughput(target, prefix(), messages, loop))
            base_tp = run_on(loop, baseline_throughput(target, prefix(), messages, loop))
            ours_flash = run_on(loop, _starmesh_flash(target, prefix(), backlog, loop))
            base_flash = run_on(loop, _baseline_flash(target, prefix(), backlog, loop))
            results[loop] = {
                "latency": {
                    "rate_msgs_per_s": rate,
                    "starmesh": ours,
                    "baseline_redis_py": base,
                    "p50_over_baseline": _ratio(ours["p50_us"], base["p50_us"]),
                    "p99_over_baseline": _ratio(ours["p99_us"], base["p99_us"]),
                },
                "throughput": {
                    "starmesh": ours_tp,
                    "baseline_redis_py": base_tp,
                    "starmesh_over_baseline": _ratio(ours_tp["msgs_per_s"], base_tp["msgs_per_s"]),
                },
                "flash_crash_behind_backlog": {"starmesh": ours_flash, "baseline_fifo": base_flash},
                "targets_met": {
                    "latency_p50": ours["p50_us"] <= TARGETS["latency_p50_us"],
                    "latency_p99": ours["p99_us"] <= TARGETS["latency_p99_us"],
                    "throughput": ours_tp["zero_loss"]
                    and ours_tp["msgs_per_s"] >= TARGETS["throughput_msgs_per_s"],
                    "flash": ours_flash["latency_ms"]["max_us"] <= TARGETS["flash_latency_ms"],
                },
            }
    finally:
        if server is not None:
            server.stop()
    return results


def redis_version(url: str) -> str:
    async def ask() -> str:
        redis = aioredis.Redis.from_url(url)
        info = await redis.info("server")
        await redis.aclose()
        return as_bytes(str(info.get("redis_version", "?"))).decode()

    return asyncio.run(ask())
