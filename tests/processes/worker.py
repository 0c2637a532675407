"""An engine in its own OS process, for the multi-process tests.

    python -m tests.processes.worker ROLE URL PREFIX INSTANCE [--handle-delay S]

It prints ``ready`` once subscribed, then works until SIGTERM (a clean stop) or SIGKILL.
What it handles it records in Redis (``<prefix>:test:handled:<instance>``, one RPUSH per
message, before returning from the handler; on the bus's server, or ``--record-url`` when the
bus is a cluster), so the test can check from outside what was handled and by whom, even
after a kill -9.

Roles:
  consumer   a PORTFOLIO instance: records the ``n`` of every ``strategy.signals.*``
  risk       a RISK instance: answers ``risk.rpc.check`` and turns every
             ``strategy.signals.*`` into a ``risk.alert.<n>`` back to the strategy
  ordered    a PORTFOLIO instance whose handler takes ``--handle-delay`` seconds, recording
             the payload ``name`` in handling order (for priority across processes)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import redis.asyncio as aioredis

from starmesh import EngineType, Message, MessagePriority, Settings, create_messagebus_client


async def main(args: argparse.Namespace) -> None:
    settings = Settings(key_prefix=args.prefix, claim_idle_ms=args.claim_idle_ms)
    engine = EngineType.RISK if args.role == "risk" else EngineType.PORTFOLIO
    client = create_messagebus_client(
        engine, url=args.url, instance=args.instance, settings=settings
    )
    recorder = aioredis.Redis.from_url(args.record_url or args.url)
    handled_key = f"{args.prefix}:test:handled:{args.instance}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def record(message: Message) -> None:
        await recorder.rpush(handled_key, message.payload["n"])

    async def record_name(message: Message) -> None:
        await asyncio.sleep(args.handle_delay)
        await recorder.rpush(handled_key, message.payload["name"])

    async def alert_back(message: Message) -> None:
        n = message.payload["n"]
        await client.publish(f"risk.alert.{n}", {"n": n, "seen_by": args.instance},
                             priority=MessagePriority.URGENT)  # fmt: skip

    def check(request: Message) -> dict[str, object]:
        return {"ok": request.payload["exposure"] < 1_000_000, "by": args.instance}

    async with client:
        if args.role == "consumer":
            await client.subscribe("strategy.signals.*", record)
        elif args.role == "ordered":
            await client.subscribe("strategy.signals.*", record_name)
        else:
            await client.subscribe("strategy.signals.*", alert_back)
            await client.serve("risk.rpc.check", check)
        print("ready", flush=True)
        await stop.wait()
    await recorder.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["consumer", "risk", "ordered"])
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("instance")
    parser.add_argument("--handle-delay", type=float, default=0.0)
    parser.add_argument("--claim-idle-ms", type=int, default=1_000)
    parser.add_argument("--record-url", help="A single server to record on (the bus: a cluster).")
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
