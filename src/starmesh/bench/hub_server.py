"""The serving side of ``starmesh bench hub``, in its own OS process.

    python -m starmesh.bench.hub_server IMPL URL PREFIX [--loop L]

IMPL ``starmesh`` runs a MarketData Hub (simulated source) on Redis; ``baseline`` runs a
bare redis-py request/reply server with a dict as its cache: requests on one stream read by
a group, each reply XADDed to the asker's stream. It prints ``ready`` and serves until
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import msgspec
import redis.asyncio as aioredis

from starmesh.bench.loops import LoopName, run_on
from starmesh.bus.redis.replies import streams
from starmesh.core.config import Settings
from starmesh.marketdata.factory import create_marketdata_hub
from starmesh.platform.process import settle_after_startup

BASELINE_GROUP = "bench"


class BaselineRequest(msgspec.Struct):
    client: str
    id: int
    symbol: str


async def serve_starmesh(url: str, prefix: str, stop: asyncio.Event) -> None:
    hub = create_marketdata_hub(["simulated"], url=url, settings=Settings(key_prefix=prefix))
    async with hub:
        settle_after_startup()
        print("ready", flush=True)
        await stop.wait()


async def serve_baseline(url: str, prefix: str, stop: asyncio.Event) -> None:
    redis = aioredis.Redis.from_url(url, socket_timeout=None)
    requests = f"{prefix}:baseline:requests"
    try:
        await redis.xgroup_create(requests, BASELINE_GROUP, id="0", mkstream=True)
    except Exception as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    decode = msgspec.msgpack.Decoder(BaselineRequest).decode
    cache: dict[str, bytes] = {}
    settle_after_startup()
    print("ready", flush=True)
    while not stop.is_set():
        reply = await redis.xreadgroup(
            BASELINE_GROUP, "server", {requests: ">"}, count=256, block=200
        )
        for _stream, entries in streams(reply):
            async with redis.pipeline(transaction=False) as pipe:
                ids = []
                for entry_id, fields in entries:
                    request = decode((fields or {})[b"m"])
                    answer = cache.get(request.symbol)
                    if answer is None:
                        answer = cache[request.symbol] = msgspec.msgpack.encode(
                            {"symbol": request.symbol, "bid": 100.0, "ask": 100.01}
                        )
                    pipe.xadd(
                        f"{prefix}:baseline:reply:{request.client}",
                        {"m": answer, "id": request.id},
                        maxlen=10_000,
                    )
                    ids.append(entry_id)
                pipe.xack(requests, BASELINE_GROUP, *ids)
                await pipe.execute()
    await redis.aclose()


async def main(impl: str, url: str, prefix: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if impl == "starmesh":
        await serve_starmesh(url, prefix, stop)
    else:
        await serve_baseline(url, prefix, stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("impl", choices=["starmesh", "baseline"])
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    args = parser.parse_args()
    loop: LoopName = "uvloop" if args.loop == "uvloop" else "asyncio"
    run_on(loop, main(args.impl, args.url, args.prefix))
