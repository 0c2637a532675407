"""Many dashboard clients in one process, for ``starmesh bench websocket``.

``python -m starmesh.bench.browsers URL CLIENTS PATTERN...`` opens CLIENTS WebSockets to
URL, each subscribing to the patterns, prints ``ready`` once every one has had its first
frame, then counts frames, the messages in them and their age (now minus the message's
``ts_event``, on the same host's clock) until its standard input closes, and prints one JSON
line of what it saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import websockets

from starmesh.core.latency import LatencyHistogram

__all__ = ["run_clients"]

_CONNECT_TIMEOUT_S = 60.0


@dataclass
class _Client:
    first: asyncio.Future[None]
    counting: bool = False
    frames: int = 0
    messages: int = 0
    age: LatencyHistogram = field(default_factory=LatencyHistogram)


async def _follow(url: str, patterns: list[str], client: _Client) -> None:
    async with websockets.connect(url, max_queue=None) as socket:
        await socket.send(json.dumps({"subscribe": patterns}))
        async for text in socket:
            frame = json.loads(text)
            if frame.get("type") != "messages":
                continue
            if not client.first.done():
                client.first.set_result(None)
            if client.counting:
                now = time.time_ns()
                client.frames += 1
                client.messages += len(frame["messages"])
                for message in frame["messages"]:
                    client.age.record(now - message["ts_event"])


async def run_clients(url: str, clients: int, patterns: list[str]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    followers = [_Client(loop.create_future()) for _ in range(clients)]
    tasks = [asyncio.create_task(_follow(url, patterns, c)) for c in followers]
    await asyncio.wait_for(asyncio.gather(*(c.first for c in followers)), _CONNECT_TIMEOUT_S)
    for client in followers:
        client.counting = True
    started = time.perf_counter()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes it
    elapsed = time.perf_counter() - started
    failed = sum(1 for t in tasks if t.done() and not t.cancelled() and t.exception())
    for task in tasks:
        task.cancel()
    age = LatencyHistogram()
    for client in followers:
        age.merge(client.age)
    return {
        "clients": clients,
        "seconds": round(elapsed, 3),
        "frames_per_client_per_s": _spread([c.frames / elapsed for c in followers]),
        "messages_per_client_per_s": _spread([c.messages / elapsed for c in followers]),
        "age_p50_us": round(age.percentile(50) / 1e3, 1),
        "age_p99_us": round(age.percentile(99) / 1e3, 1),
        "failed": failed,
    }


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(round(v, 1) for v in values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


def main() -> None:
    url, clients, *patterns = sys.argv[1:]
    result = asyncio.run(run_clients(url, int(clients), patterns or ["*"]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
