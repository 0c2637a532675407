"""The receiving engine of ``starmesh bench redis``, run in its own OS process.

    python -m starmesh.bench.redis_peer IMPL MODE URL PREFIX EXPECTED [--loop L]

IMPL is ``starmesh`` (a PORTFOLIO client subscribed to ``bench.*``), ``baseline`` (a bare
redis-py XREADGROUP/XACK loop on one stream, decoding each entry with msgspec),
``faststream`` (a FastStream ``StreamSub`` with a consumer group, its defaults otherwise) or
``pubsub`` (a bare redis-py SUBSCRIBE: at most once, so it stops after a quiet second and
reports what it got). It prints ``ready``, handles EXPECTED messages, stops (acknowledging
everything) and prints one JSON line with what it measured:

- ``latency``: one-way latencies ``time.time_ns() - ts_publish`` in ns (same host clock);
- ``throughput``: wall-clock ns of the first and last message handled;
- ``flash``: each FLASH_CRASH message's latency and how much of the backlog went before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis

from starmesh.bench.loops import LoopName, run_on
from starmesh.bus.redis.replies import streams
from starmesh.client import create_messagebus_client
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType, MessagePriority
from starmesh.core.message import Message
from starmesh.platform.process import settle_after_startup

BASELINE_GROUP = "bench"


class Recorder:
    def __init__(self, mode: str, expected: int) -> None:
        self.mode = mode
        self.expected = expected
        self.count = 0
        self.latencies: list[int] = []
        self.first_ns = 0
        self.last_ns = 0
        self.flash_latencies_ns: list[int] = []
        self.handled_before_flash: list[int] = []
        self.done = asyncio.Event()

    def record(self, ts_publish: int, priority: int) -> None:
        now = time.time_ns()
        if self.count == 0:
            self.first_ns = now
        self.count += 1
        self.last_ns = now
        if self.mode == "latency":
            self.latencies.append(now - ts_publish)
        elif self.mode == "flash" and priority == MessagePriority.FLASH_CRASH:
            self.flash_latencies_ns.append(now - ts_publish)
            self.handled_before_flash.append(self.count - len(self.flash_latencies_ns))
        if self.count == self.expected:
            self.done.set()

    def result(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "latencies_ns": self.latencies,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "flash_latencies_ns": self.flash_latencies_ns,
            "handled_before_flash": self.handled_before_flash,
        }


async def run_starmesh(recorder: Recorder, url: str, prefix: str) -> None:
    settings = Settings(key_prefix=prefix)
    client = create_messagebus_client(
        EngineType.PORTFOLIO, url=url, instance="bench-peer", settings=settings
    )

    def handle(message: Message) -> None:
        recorder.record(message.ts_publish, message.priority)

    await client.subscribe("bench.*", handle)
    async with client:
        settle_after_startup()
        print("ready", flush=True)
        await recorder.done.wait()


class _Stamp(msgspec.Struct):
    ts_publish: int
    priority: int


async def run_baseline(recorder: Recorder, url: str, stream: str) -> None:
    redis = aioredis.Redis.from_url(url)
    decoder = msgspec.msgpack.Decoder(_Stamp)
    try:
        await redis.xgroup_create(stream, BASELINE_GROUP, id="0", mkstream=True)
    except Exception as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    settle_after_startup()  # the same process tuning as the starmesh side
    print("ready", flush=True)
    while not recorder.done.is_set():
        reply = await redis.xreadgroup(BASELINE_GROUP, "peer", {stream: ">"}, count=256, block=1000)
        for _stream, entries in streams(reply):
            ids = []
            for entry_id, fields in entries:
                stamp = decoder.decode((fields or {})[b"m"])
                recorder.record(stamp.ts_publish, stamp.priority)
                ids.append(entry_id)
            await redis.xack(stream, BASELINE_GROUP, *ids)
    await redis.aclose()


async def run_faststream(recorder: Recorder, url: str, stream: str) -> None:
    from faststream.redis import RedisBroker, StreamSub

    # None: no per-message log. The ignores hold with or without the optional .[bench] extra.
    broker = RedisBroker(url, logger=None)  # type: ignore[arg-type, unused-ignore]

    @broker.subscriber(stream=StreamSub(stream, group=BASELINE_GROUP, consumer="peer"))  # type: ignore[untyped-decorator, unused-ignore]
    async def handle(body: dict[str, Any]) -> None:
        recorder.record(body["ts_publish"], body["priority"])

    async with broker:
        await broker.start()
        settle_after_startup()
        print("ready", flush=True)
        await recorder.done.wait()


PUBSUB_QUIET_S = 1.0
"""Pub/sub loses what it cannot deliver: the receiver stops after this long without news."""


async def run_pubsub(recorder: Recorder, url: str, channel: str) -> None:
    redis = aioredis.Redis.from_url(url)
    decoder = msgspec.msgpack.Decoder(_Stamp)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    settle_after_startup()
    print("ready", flush=True)
    while not recorder.done.is_set():
        message = await pubsub.get_message(timeout=PUBSUB_QUIET_S)
        if message is None:
            if recorder.count:
                break  # quiet after traffic: the rest was lost
            continue
        stamp = decoder.decode(message["data"])
        recorder.record(stamp.ts_publish, stamp.priority)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await redis.aclose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    recorder = Recorder(args.mode, args.expected)
    if args.impl == "starmesh":
        await run_starmesh(recorder, args.url, args.prefix)
    elif args.impl == "faststream":
        await run_faststream(recorder, args.url, f"{args.prefix}:faststream")
    elif args.impl == "pubsub":
        await run_pubsub(recorder, args.url, f"{args.prefix}:pubsub")
    else:
        await run_baseline(recorder, args.url, f"{args.prefix}:baseline")
    return recorder.result()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("impl", choices=["starmesh", "baseline", "faststream", "pubsub"])
    parser.add_argument("mode", choices=["latency", "throughput", "flash"])
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("expected", type=int)
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    arguments = parser.parse_args()
    loop: LoopName = "uvloop" if arguments.loop == "uvloop" else "asyncio"
    result = run_on(loop, main(arguments))
    print(json.dumps(result), flush=True)
    sys.exit(0)
