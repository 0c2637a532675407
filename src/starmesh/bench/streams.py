"""``starmesh bench peers`` over Redis: starmesh against what a user would write instead.

Every system moves the same payload between two OS processes through the same private
redis-server (receivers in :mod:`starmesh.bench.redis_peer`); repetitions alternate between
systems, so a disturbance of the shared machine hits all of them alike:

- ``starmesh``: the Redis transport (a STRATEGY client publishing, a PORTFOLIO client
  subscribed; consumer group, acknowledgements, priorities);
- ``faststream``: FastStream's ``RedisBroker`` publishing to a stream, a ``StreamSub`` with a
  consumer group receiving (FastStream's defaults otherwise; JSON bodies, as its users send);
- ``redis_py_pipelined`` / ``redis_py``: bare ``XADD`` (pipelines of 1,000, or one awaited at
  a time) -> ``XREADGROUP``/``XACK`` of starmesh-encoded messages;
- ``pubsub``: bare ``PUBLISH`` -> ``SUBSCRIBE``: at most once, nothing stored or
  acknowledged; what it loses is counted, not hidden.

*Throughput* sends ``messages`` as fast as the system allows (256 concurrent publishers
for starmesh, 64 for FastStream, whose default pool refuses more) and counts what arrived
and what stayed unacknowledged. *Latency* sends one message at a time at ``rate``: publish
call to handler.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis

from starmesh.bench.loops import LoopName, run_on
from starmesh.bench.pacing import send_paced
from starmesh.bench.redis import (
    PAYLOAD,
    Peer,
    baseline_latency,
    baseline_throughput,
    pending_count,
    redis_version,
    starmesh_latency,
    starmesh_throughput,
    throughput_of,
    wire_message,
)
from starmesh.bench.stats import latency_summary, ratio_summary
from starmesh.core.codec import MessageCodec
from starmesh.testing import RedisServer

__all__ = ["SYSTEMS", "run_streams_bench"]

SYSTEMS = ("starmesh", "faststream", "redis_py_pipelined", "redis_py", "pubsub")
_WARMUP = 500
_FASTSTREAM_CONCURRENCY = 64
"""FastStream's default connection pool refuses 256 publishes at once (Too many connections);
its rate is bound by its consumer (a few thousand msg/s), not by publishers."""
_PIPELINE = 1_000


def _body() -> dict[str, Any]:
    return {**PAYLOAD, "ts_publish": time.time_ns(), "priority": 2}


async def _faststream_broker(url: str) -> Any:
    from faststream.redis import RedisBroker

    # None: no per-message log. The ignore holds with or without the optional .[bench] extra.
    broker = RedisBroker(url, logger=None)  # type: ignore[arg-type, unused-ignore]
    await broker.connect()
    return broker


async def _faststream_throughput(url: str, prefix: str, messages: int, loop: str) -> dict[str, Any]:
    peer = Peer("faststream", "throughput", url, prefix, messages, loop)
    await peer.ready()
    broker = await _faststream_broker(url)
    stream = f"{prefix}:faststream"

    async def publisher(first: int) -> None:
        for _ in range(first, messages, _FASTSTREAM_CONCURRENCY):
            await broker.publish(_body(), stream=stream)

    started = time.time_ns()
    try:
        await asyncio.gather(*(publisher(k) for k in range(_FASTSTREAM_CONCURRENCY)))
    except BaseException:
        peer.process.kill()  # it would wait for messages that never come
        raise
    finally:
        await broker.stop()
    result = await peer.result()
    return throughput_of(messages, started, result, await pending_count(url, stream, "bench"))


async def _faststream_latency(
    url: str, prefix: str, rate: float, count: int, loop: str
) -> dict[str, Any]:
    peer = Peer("faststream", "latency", url, prefix, count, loop)
    await peer.ready()
    broker = await _faststream_broker(url)
    stream = f"{prefix}:faststream"
    await send_paced(count, rate, lambda _: broker.publish(_body(), stream=stream))
    await broker.stop()
    return latency_summary((await peer.result())["latencies_ns"][_WARMUP:])


async def _sequential_xadd_throughput(
    url: str, prefix: str, messages: int, loop: str
) -> dict[str, Any]:
    peer = Peer("baseline", "throughput", url, prefix, messages, loop)
    await peer.ready()
    redis = aioredis.Redis.from_url(url)
    codec = MessageCodec()
    stream = f"{prefix}:baseline"
    started = time.time_ns()
    for _ in range(messages):
        await redis.xadd(stream, {"m": wire_message(codec)})
    await redis.aclose()
    result = await peer.result()
    return throughput_of(messages, started, result, await pending_count(url, stream, "bench"))


async def _pubsub_throughput(url: str, prefix: str, messages: int, loop: str) -> dict[str, Any]:
    peer = Peer("pubsub", "throughput", url, prefix, messages, loop)
    await peer.ready()
    redis = aioredis.Redis.from_url(url)
    codec = MessageCodec()
    channel = f"{prefix}:pubsub"
    started = time.time_ns()
    for first in range(0, messages, _PIPELINE):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(first, min(first + _PIPELINE, messages)):
                pipe.publish(channel, wire_message(codec))
            await pipe.execute()
    await redis.aclose()
    return throughput_of(messages, started, await peer.result(), 0)


async def _pubsub_latency(
    url: str, prefix: str, rate: float, count: int, loop: str
) -> dict[str, Any]:
    peer = Peer("pubsub", "latency", url, prefix, count, loop)
    await peer.ready()
    redis = aioredis.Redis.from_url(url)
    codec = MessageCodec()
    channel = f"{prefix}:pubsub"
    await send_paced(count, rate, lambda _: redis.publish(channel, wire_message(codec)))
    await redis.aclose()
    result = await peer.result()
    summary = latency_summary(result["latencies_ns"][_WARMUP:])
    summary["lost"] = count - result["count"]
    return summary


_Result = Coroutine[Any, Any, dict[str, Any]]
_Throughput = Callable[[str, str, int, str], _Result]
_Latency = Callable[[str, str, float, int, str], _Result]
_THROUGHPUT: dict[str, _Throughput] = {
    "starmesh": starmesh_throughput,
    "faststream": _faststream_throughput,
    "redis_py_pipelined": baseline_throughput,
    "redis_py": _sequential_xadd_throughput,
    "pubsub": _pubsub_throughput,
}
_LATENCY: dict[str, _Latency] = {
    "starmesh": starmesh_latency,
    "faststream": _faststream_latency,
    "redis_py": baseline_latency,  # one message at a time: nothing to pipeline
    "pubsub": _pubsub_latency,
}


def _prefix() -> str:
    return f"bench{uuid.uuid4().hex[:8]}"


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median one (the upper middle of an even count)."""
    ordered = sorted(runs, key=lambda run: run[key])
    return ordered[len(ordered) // 2]


def run_streams_bench(
    *,
    url: str | None,
    messages: int,
    rate: float,
    seconds: float,
    repeats: int,
    loop: LoopName,
    systems: tuple[str, ...] = SYSTEMS,
) -> dict[str, Any]:
    server = None if url else RedisServer().start()
    target = url or (server.url if server else "")
    count = int(rate * seconds) + _WARMUP
    throughput: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    latency: dict[str, list[dict[str, Any]]] = {name: [] for name in systems if name in _LATENCY}
    try:
        for _ in range(repeats):  # alternate: one run of every system per repetition
            for name in systems:
                run = _THROUGHPUT[name](target, _prefix(), messages, loop)
                throughput[name].append(run_on(loop, run))
            for name in latency:
                run = _LATENCY[name](target, _prefix(), rate, count, loop)
                latency[name].append(run_on(loop, run))
        version = redis_version(target)
    finally:
        if server is not None:
            server.stop()
    return _summarise(version, messages, rate, throughput, latency)


def _summarise(
    version: str,
    messages: int,
    rate: float,
    throughput: dict[str, list[dict[str, Any]]],
    latency: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    systems: dict[str, Any] = {}
    for name, runs in throughput.items():
        rates = [run["msgs_per_s"] for run in runs]
        systems[name] = {
            "throughput": {
                "messages": messages,
                "runs": runs,
                "median_msgs_per_s": round(statistics.median(rates)),
                "zero_loss": all(run["zero_loss"] for run in runs),
                "lost": max(run["messages"] - run["handled"] for run in runs),
            }
        }
        if name in latency:
            systems[name]["latency"] = _median_run(latency[name], "p50_us") | {
                "runs_p50_us": [run["p50_us"] for run in latency[name]],
                "runs_p99_us": [run["p99_us"] for run in latency[name]],
            }
    ratios: dict[str, Any] = {}
    ours = throughput.get("starmesh", [])
    for peer in (name for name in throughput if name != "starmesh"):
        per_run = [
            mine["msgs_per_s"] / theirs["msgs_per_s"]
            for mine, theirs in zip(ours, throughput[peer], strict=True)
        ]
        ratios[peer] = {"throughput": ratio_summary(per_run)}
        if peer in latency and "starmesh" in latency:
            for key in ("p50_us", "p99_us"):
                per_run = [
                    mine[key] / theirs[key]
                    for mine, theirs in zip(latency["starmesh"], latency[peer], strict=True)
                ]
                ratios[peer][key.removesuffix("_us")] = ratio_summary(per_run)
    return {
        "redis": version,
        "rate_msgs_per_s": rate,
        "systems": systems,
        "starmesh_over": ratios,
    }
