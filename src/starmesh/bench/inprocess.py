"""``starmesh bench peers`` in one process: the embedded bus against NautilusTrader's MessageBus.

Both sides publish the same dict on ``strategy.signals.buy`` to wildcard subscribers that
were all subscribed before the first publish:

- ``subs1``, ``subs5``, ``subs20``: 1, 5 or 20 subscribers. On starmesh each subscriber is a
  client of its own engine type while there are types left (12 besides the publisher's);
  past 12, the first clients hold a second subscription (``strategy.*``): 20 subscribers are
  12 clients, 8 of them with two handlers. (Instances of one type share the load, so a
  second instance would not see every message.)
- ``patterns50``: 50 patterns registered, of which 5 match (5 handlers called per publish).

*Throughput*: ``messages`` publishes, timed until every handler has seen every message
(Nautilus calls handlers inside ``publish``; starmesh queues and delivers them after).
*Per-hop latency*: one publish at a time at ``rate``, ``perf_counter_ns`` before the publish
call to each handler's call, every handler's sample counted.
Repetitions alternate between the two; ratios are starmesh / Nautilus of the same repetition.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from starmesh.bench.loops import LoopName, run_on
from starmesh.bench.pacing import send_paced
from starmesh.bench.stats import latency_summary, ratio_summary
from starmesh.client import MessageBusClient, create_messagebus_client
from starmesh.core.enums import EngineType
from starmesh.core.message import Message

__all__ = ["SCENARIOS", "nautilus_version", "run_inprocess_bench"]

PAYLOAD = {"symbol": "AAPL", "action": "BUY", "quantity": 100}
TOPIC = "strategy.signals.buy"
_MATCHING = ("strategy.signals.*", "strategy.*", "strategy.signals.b*", "*.signals.buy",
             "strategy.?ignals.*")  # fmt: skip
SCENARIOS: dict[str, tuple[list[str], int]] = {
    # name: (the pattern of each subscriber, handlers called per publish)
    "subs1": (["strategy.signals.*"], 1),
    "subs5": (["strategy.signals.*"] * 5, 5),
    "subs20": (["strategy.signals.*"] * 20, 20),
    "patterns50": ([*_MATCHING, *(f"engine{n}.signals.*" for n in range(45))], 5),
}
_PUBLISHER = EngineType.STRATEGY
_ENGINES = [engine for engine in EngineType if engine is not _PUBLISHER]


def nautilus_version() -> str | None:
    try:
        from nautilus_trader import __version__
    except ImportError:
        return None
    return str(__version__)


class _Counter:
    """Handlers count into one object; ``done`` fires when ``expected`` calls were made."""

    def __init__(self, expected: int) -> None:
        self.left = expected
        self.done = asyncio.Event() if expected else None
        self.sent_ns = 0
        self.samples: list[int] = []

    def count(self, _message: object) -> None:
        self.left -= 1
        if self.left == 0 and self.done is not None:
            self.done.set()

    def stamp(self, _message: object) -> None:
        self.samples.append(time.perf_counter_ns() - self.sent_ns)


# --- NautilusTrader ----------------------------------------------------------------------------


def _nautilus_bus(patterns: list[str], handler: Callable[[object], None]) -> Any:
    from nautilus_trader.common.component import LiveClock, MessageBus
    from nautilus_trader.model.identifiers import TraderId

    bus = MessageBus(TraderId("BENCH-001"), LiveClock())
    for pattern in patterns:
        # A distinct callable per subscriber: Nautilus keys subscriptions by (topic, handler).
        bus.subscribe(pattern, _own_callable(handler))
    return bus


def _nautilus_throughput(patterns: list[str], messages: int) -> float:
    counter = _Counter(0)
    bus = _nautilus_bus(patterns, counter.count)
    publish = bus.publish
    started = time.perf_counter()
    for _ in range(messages):
        publish(TOPIC, PAYLOAD)
    return messages / (time.perf_counter() - started)


async def _nautilus_latency(patterns: list[str], count: int, rate: float) -> list[int]:
    counter = _Counter(0)
    bus = _nautilus_bus(patterns, counter.stamp)

    async def send(_: int) -> None:
        counter.sent_ns = time.perf_counter_ns()
        bus.publish(TOPIC, PAYLOAD)

    await send_paced(count, rate, send)
    return counter.samples


# --- starmesh ----------------------------------------------------------------------------------


def _own_callable(handler: Callable[[Message], None]) -> Callable[[Message], None]:
    """A distinct function per subscriber, as on the Nautilus side."""

    def handle(message: Message) -> None:
        handler(message)

    return handle


async def _starmesh_clients(
    patterns: list[str], handler: Callable[[Message], None]
) -> list[MessageBusClient]:
    clients: list[MessageBusClient] = []
    for index, pattern in enumerate(patterns):
        if index < len(_ENGINES):
            clients.append(create_messagebus_client(_ENGINES[index], instance=f"bench-{index}"))
            await clients[-1].start()
        client = clients[index % len(clients)]
        # Past one client per engine type, a second subscription needs a pattern of its own.
        second = index >= len(_ENGINES) and pattern == "strategy.signals.*"
        await client.subscribe("strategy.*" if second else pattern, _own_callable(handler))
    return clients


async def _starmesh_throughput(patterns: list[str], handlers: int, messages: int) -> float:
    counter = _Counter(messages * handlers)
    publisher = create_messagebus_client(_PUBLISHER, instance="bench-publisher")
    await publisher.start()
    clients = await _starmesh_clients(patterns, counter.count)
    assert counter.done is not None
    started = time.perf_counter()
    for _ in range(messages):
        await publisher.publish(TOPIC, PAYLOAD)
    await counter.done.wait()
    elapsed = time.perf_counter() - started
    for client in (*clients, publisher):
        await client.stop()
    return messages / elapsed


async def _starmesh_latency(
    patterns: list[str], handlers: int, count: int, rate: float
) -> list[int]:
    counter = _Counter(count * handlers)
    publisher = create_messagebus_client(_PUBLISHER, instance="bench-publisher")
    await publisher.start()
    clients = await _starmesh_clients(patterns, counter.stamp)

    async def send(_: int) -> None:
        counter.sent_ns = time.perf_counter_ns()
        await publisher.publish(TOPIC, PAYLOAD)

    await send_paced(count, rate, send)
    for client in (*clients, publisher):
        await client.stop()  # delivers what is queued
    return counter.samples


# --- the whole run -----------------------------------------------------------------------------


def run_inprocess_bench(
    *, messages: int, rate: float, seconds: float, repeats: int, loop: LoopName
) -> dict[str, Any]:
    version = nautilus_version()
    if version is None:
        return {"nautilus_trader": None, "skipped": "nautilus_trader is not installed: "
                "pip install -e '.[bench]'"}  # fmt: skip
    count = max(1, int(rate * seconds))
    warmup = min(1_000, messages // 10)
    results: dict[str, Any] = {"nautilus_trader": version, "scenarios": {}}
    for name, (patterns, handlers) in SCENARIOS.items():
        _nautilus_throughput(patterns, warmup)
        run_on(loop, _starmesh_throughput(patterns, handlers, warmup))
        theirs: list[float] = []
        ours: list[float] = []
        for _ in range(repeats):  # alternate, so a disturbance hits both
            theirs.append(_nautilus_throughput(patterns, messages))
            ours.append(run_on(loop, _starmesh_throughput(patterns, handlers, messages)))
        their_latency = latency_summary(run_on(loop, _nautilus_latency(patterns, count, rate)))
        our_latency = latency_summary(
            run_on(loop, _starmesh_latency(patterns, handlers, count, rate))
        )
        results["scenarios"][name] = {
            "patterns": len(patterns),
            "handlers_per_publish": handlers,
            "messages": messages,
            "nautilus": {"runs_publishes_per_s": [round(r) for r in theirs],
                         "median_publishes_per_s": round(statistics.median(theirs)),
                         "latency": their_latency},
            "starmesh": {"runs_publishes_per_s": [round(r) for r in ours],
                         "median_publishes_per_s": round(statistics.median(ours)),
                         "latency": our_latency},
            "starmesh_over_nautilus": ratio_summary(
                [o / t for o, t in zip(ours, theirs, strict=True)]),
        }  # fmt: skip
    return results
