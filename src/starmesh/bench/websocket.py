"""``starmesh bench websocket``: the dashboard's fan-out to many browsers, and its cost to the bus.

The platform runs as ``starmesh run`` runs it (one process, the embedded bus, the simulated
market at a chosen rate) and serves the dashboard, or (``separate``) with the WebSocket
engine as a process of its own over two private redis-servers, as deployed; another process
(:mod:`starmesh.bench.browsers`) opens N WebSocket clients that each follow the quotes
(``marketdata.quote.*``: about ``rate`` updates a second each). Runs without clients and with
N alternate. Over each run's window (after a warm-up, the route meter reset):

- *the bus*: p50/p99 publish-to-handler of every route between engines (the browsers' own
  route ``websocket -> *`` apart), summarised as the median and the worst route;
- *the browsers*: frames per client per second, the age of what they got (p50/p99, from
  the message's event time), failed connections;
- *CPU* of the platform's process and of the clients' process.

The issue's aim, "100 clients at 1,000 updates a second without raising the bus's p99 by
more than 20%", is reported as the ratio of the medians, loaded over baseline, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
from typing import Any

import msgspec

from starmesh.bench.cpu import CpuMeter
from starmesh.core.enums import EngineType
from starmesh.marketdata.sources.simulated import DEFAULT_UNIVERSE
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig
from starmesh.testing import RedisServer

__all__ = ["bus_latency", "run_websocket_bench"]

_READY_TIMEOUT_S = 120.0
_MIN_MESSAGES = 50
"""A route with fewer messages in the window says nothing about its p99."""


def bus_latency(routes: list[dict[str, Any]]) -> dict[str, Any]:
    """The routes between engines (not to the browsers) with enough messages: their median
    p50 and p99, and the worst p99 with its route."""
    rows = [r for r in routes if r["to"] != "*" and r["messages"] >= _MIN_MESSAGES]
    if not rows:
        return {"routes": 0}
    worst = max(rows, key=lambda r: r["p99_us"])
    return {
        "routes": len(rows),
        "p50_us_median": statistics.median(r["p50_us"] for r in rows),
        "p99_us_median": statistics.median(r["p99_us"] for r in rows),
        "p99_us_worst": worst["p99_us"],
        "worst_route": f"{worst['from']}>{worst['to']} {worst['topic']}",
    }


async def _start_browsers(
    url: str, clients: int, patterns: list[str]
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starmesh.bench.browsers", url, str(clients), *patterns,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), _READY_TIMEOUT_S)
    if line.strip() != b"ready":
        process.kill()
        await process.wait()
        raise RuntimeError(f"the browsers did not connect: {line!r}")
    return process


async def _stop_browsers(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    await process.wait()
    result: dict[str, Any] = json.loads(line)
    return result


async def _start_gateway(url: str, marketdata_url: str) -> tuple[asyncio.subprocess.Process, str]:
    """``starmesh engine websocket`` in a process of its own; its dashboard's address."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starmesh", "engine", "websocket", "--url", url,
        "--marketdata-url", marketdata_url, "--port", "0", "--no-ledger",
        "--instance", "bench-websocket",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert process.stdout is not None
    while line := await asyncio.wait_for(process.stdout.readline(), _READY_TIMEOUT_S):
        found = re.search(rb"ready: websocket on (http://\S+)", line)
        if found:
            return process, found.group(1).decode().rstrip("/") + "/"
    await process.wait()
    raise RuntimeError(f"the WebSocket engine did not start (exit {process.returncode})")


async def _stop(process: asyncio.subprocess.Process | None) -> None:
    if process is not None and process.returncode is None:
        process.terminate()
        await process.wait()


async def _run(
    config: PlatformConfig,
    clients: int,
    patterns: list[str],
    warmup_s: float,
    window_s: float,
    buses: tuple[str, str] | None = None,
) -> dict[str, Any]:
    gateway: asyncio.subprocess.Process | None = None
    if buses is None:
        platform = Platform(config, dashboard=("127.0.0.1", 0))
    else:  # the gateway in a process of its own, the other engines here, over Redis
        others = tuple(e for e in config.engines if e is not EngineType.WEBSOCKET)
        platform = Platform(msgspec.structs.replace(config, engines=others), url=buses[0],
                            marketdata_url=buses[1])  # fmt: skip
    await platform.start()
    browsers: asyncio.subprocess.Process | None = None
    try:
        assert platform.hub is not None
        if buses is not None:
            gateway, dashboard_url = await _start_gateway(*buses)
        else:
            assert platform.dashboard_url is not None
            dashboard_url = platform.dashboard_url
        if clients:
            url = dashboard_url.replace("http://", "ws://") + "ws"
            browsers = await _start_browsers(url, clients, patterns)
        await asyncio.sleep(warmup_s)
        pids = {"platform": os.getpid()}
        if browsers is not None:
            pids["browsers"] = browsers.pid
        if gateway is not None:
            pids["gateway"] = gateway.pid
        cpu = CpuMeter(pids)
        accounting = platform.hub.accounting
        quotes_before = accounting.distributed_by_type.get("quote", 0)
        platform.meter.reset()
        cpu.start()
        await asyncio.sleep(window_s)
        used = cpu.stop()
        routes = platform.meter.routes()
        quotes = (accounting.distributed_by_type.get("quote", 0) - quotes_before) / window_s
        seen = await _stop_browsers(browsers) if browsers is not None else None
        browsers = None
    finally:
        if browsers is not None:
            browsers.kill()
            await browsers.wait()
        await _stop(gateway)
        await platform.stop()
    to_browsers = next((r for r in routes if r["to"] == "*"), None)
    return {
        "clients": clients,
        "quotes_per_s": round(quotes, 1),
        "bus": bus_latency(routes),
        "to_browsers": to_browsers,
        "browsers": seen,
        "cpu_cores": {name: round(s / window_s, 3) for name, s in used.items()},
    }


def _median(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


async def run_websocket_bench(
    *,
    clients: int = 100,
    symbols: int = 20,
    quotes_per_second: float = 1_000.0,
    patterns: tuple[str, ...] = ("marketdata.quote.*",),
    warmup_s: float = 5.0,
    window_s: float = 20.0,
    repeats: int = 2,
    separate: bool = False,
) -> dict[str, Any]:
    """Alternate runs without clients and with ``clients``; medians and their ratio.
    ``separate``: the WebSocket engine as its own process, over two private redis-servers."""
    config = PlatformConfig(symbols=tuple(DEFAULT_UNIVERSE[:symbols]),
                            quotes_per_second=quotes_per_second)  # fmt: skip
    runs: list[dict[str, Any]] = []
    servers = [RedisServer().start(), RedisServer().start()] if separate else []
    buses = (servers[1].url, servers[0].url) if servers else None
    try:
        for _ in range(repeats):
            for n in (0, clients):
                runs.append(await _run(config, n, list(patterns), warmup_s, window_s, buses))
    finally:
        for server in servers:
            server.stop()
    baseline = [r for r in runs if r["clients"] == 0]
    loaded = [r for r in runs if r["clients"] == clients]
    summary: dict[str, Any] = {}
    for name, group in (("baseline", baseline), ("loaded", loaded)):
        summary[name] = {
            "bus_p50_us_median": _median(group, "bus", "p50_us_median"),
            "bus_p99_us_median": _median(group, "bus", "p99_us_median"),
            "bus_p99_us_worst": _median(group, "bus", "p99_us_worst"),
            "quotes_per_s": _median(group, "quotes_per_s"),
            "platform_cores": _median(group, "cpu_cores", "platform"),
        }
    base, load = summary["baseline"], summary["loaded"]
    for key in ("bus_p99_us_median", "bus_p99_us_worst"):
        if base[key] and load[key] is not None:
            summary[f"{key}_ratio"] = round(load[key] / base[key], 2)
    summary["browser_frames_per_s_median"] = _median(
        loaded, "browsers", "frames_per_client_per_s", "median"
    )
    summary["browser_messages_per_s_median"] = _median(
        loaded, "browsers", "messages_per_client_per_s", "median"
    )
    summary["browser_age_p99_us"] = _median(loaded, "browsers", "age_p99_us")
    summary["browsers_cores"] = _median(loaded, "cpu_cores", "browsers")
    summary["gateway_cores"] = _median(loaded, "cpu_cores", "gateway")
    layout = "separate" if separate else "embedded"
    return {"runs": runs, "summary": summary, "clients": clients, "layout": layout}
