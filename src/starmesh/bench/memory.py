"""``starmesh bench memory``: publish -> handler through the embedded bus, against a bare queue.

Both sides move the same small payload from one coroutine to another in one process:

- *throughput*: publish ``messages`` as fast as possible to one subscriber; the clock stops
  when the handler has seen the last one (so nothing is counted that was not handled);
- *latency*: one message at a time at a fixed rate; the handler records
  ``time.time_ns() - ts_publish`` (publish call to handler, one way).

The baseline is a bare ``asyncio.Queue`` hop (``put`` -> ``get``) with the same bound and
the same pacing, so starmesh's cost is the ratio of the two.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from starmesh.bench.loops import LoopName, run_on
from starmesh.bench.pacing import send_paced
from starmesh.bench.stats import latency_summary, throughput_summary
from starmesh.client import create_messagebus_client
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.core.message import Message

__all__ = ["TARGETS", "run_memory_bench"]

TARGETS = {"throughput_msgs_per_s": 500_000, "latency_p50_us": 10.0, "latency_p99_us": 50.0}
_PAYLOAD = {"symbol": "AAPL", "action": "BUY", "quantity": 100}
_TOPIC = "strategy.signals.buy"
_WARMUP = 1_000


async def _starmesh_throughput(messages: int, capacity: int) -> float:
    done = asyncio.Event()
    seen = 0

    def handler(message: Message) -> None:
        nonlocal seen
        seen += 1
        if seen == messages:
            done.set()

    settings = Settings(lane_capacity=capacity)
    publisher = create_messagebus_client(EngineType.STRATEGY, settings=settings)
    subscriber = create_messagebus_client(EngineType.PORTFOLIO, settings=settings)
    async with publisher, subscriber:
        await subscriber.subscribe(_TOPIC, handler)
        start = time.perf_counter()
        for _ in range(messages):
            await publisher.publish(_TOPIC, _PAYLOAD)
        await done.wait()
        return messages / (time.perf_counter() - start)


async def _queue_throughput(messages: int, capacity: int) -> float:
    queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue(capacity)

    async def consume() -> None:
        for _ in range(messages):
            await queue.get()

    consumer = asyncio.create_task(consume())
    start = time.perf_counter()
    for _ in range(messages):
        await queue.put((time.time_ns(), _PAYLOAD))
    await consumer
    return messages / (time.perf_counter() - start)


async def _starmesh_latency(count: int, rate: float) -> list[int]:
    samples: list[int] = []
    done = asyncio.Event()

    def handler(message: Message) -> None:
        samples.append(time.time_ns() - message.ts_publish)
        if len(samples) == count:
            done.set()

    publisher = create_messagebus_client(EngineType.STRATEGY)
    subscriber = create_messagebus_client(EngineType.PORTFOLIO)
    async with publisher, subscriber:
        await subscriber.subscribe(_TOPIC, handler)
        await send_paced(count, rate, lambda _: publisher.publish(_TOPIC, _PAYLOAD))
        await done.wait()
    return samples[_WARMUP:]


async def _queue_latency(count: int, rate: float) -> list[int]:
    queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue(10_000)
    samples: list[int] = []

    async def consume() -> None:
        for _ in range(count):
            sent, _payload = await queue.get()
            samples.append(time.time_ns() - sent)

    consumer = asyncio.create_task(consume())
    await send_paced(count, rate, lambda _: queue.put((time.time_ns(), _PAYLOAD)))
    await consumer
    return samples[_WARMUP:]


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("nan")


def run_memory_bench(
    *, messages: int, rate: float, seconds: float, repeats: int, loops: list[LoopName]
) -> dict[str, Any]:
    """Measure every loop in ``loops``; each measurement runs on a fresh event loop."""
    capacity = Settings().lane_capacity
    count = int(rate * seconds) + _WARMUP
    results: dict[str, Any] = {}
    for loop in loops:
        ours = [run_on(loop, _starmesh_throughput(messages, capacity)) for _ in range(repeats)]
        base = [run_on(loop, _queue_throughput(messages, capacity)) for _ in range(repeats)]
        our_latency = latency_summary(run_on(loop, _starmesh_latency(count, rate)))
        base_latency = latency_summary(run_on(loop, _queue_latency(count, rate)))
        results[loop] = {
            "throughput": {
                "messages": messages,
                "starmesh": throughput_summary(ours),
                "baseline_asyncio_queue": throughput_summary(base),
                "starmesh_over_baseline": _ratio(statistics.median(ours), statistics.median(base)),
            },
            "latency": {
                "rate_msgs_per_s": rate,
                "starmesh": our_latency,
                "baseline_asyncio_queue": base_latency,
                "p50_over_baseline": _ratio(our_latency["p50_us"], base_latency["p50_us"]),
                "p99_over_baseline": _ratio(our_latency["p99_us"], base_latency["p99_us"]),
            },
            "targets_met": {
                "throughput": statistics.median(ours) >= TARGETS["throughput_msgs_per_s"],
                "latency_p50": our_latency["p50_us"] <= TARGETS["latency_p50_us"],
                "latency_p99": our_latency["p99_us"] <= TARGETS["latency_p99_us"],
            },
        }
    return results
