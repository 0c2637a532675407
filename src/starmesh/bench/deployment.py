"""``starmesh bench deployment``: the whole platform as separate OS processes over Redis.

What ``starmesh up`` runs (the hub and every engine, each a process of its own, plus extra
instances), on two private redis-servers unless URLs are given, with the simulated market
at a chosen rate. After a warm-up, over a measured window:

- *mesh throughput*: messages handled per second by every engine, split into market data
  (hub -> engines) and engine logic (engine -> engine), from each engine's route meter;
- *per route*: messages in the window, and p50/p99 publish-to-handler latency of the
  window (the difference of each engine's histogram buckets at its start and end; the
  highest p99 of a route's instances);
- *per process*: CPU (cores used in the window) and resident memory, redis-servers too;
- with ``crash_after_s``, the flash-crash scenario played by the hub's process: each Strategy
  instance's halt latency (from the crash tick leaving the hub to the halt in Strategy's own
  process), read from its ``/health`` at the window's start and end.

The figures feed the sizing model in docs/deploy.md. Nothing here is a pass/fail target.
"""

from __future__ import annotations

import asyncio
import collections
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec

from starmesh.bench.cpu import CpuMeter
from starmesh.core.enums import EngineType
from starmesh.core.latency import LatencyHistogram
from starmesh.marketdata.sources.simulated import DEFAULT_UNIVERSE
from starmesh.platform.config import ALL_ENGINES, PlatformConfig
from starmesh.platform.supervisor import ProcessSpec, Supervisor, plan_processes
from starmesh.testing import RedisServer

__all__ = ["resident_mb", "run_deployment_bench", "summarise_routes", "window_halts"]

READY_TIMEOUT_S = 180.0
"""Thirteen interpreters importing numpy and polars on two cores take a while."""
_TROUBLE = re.compile(r"Traceback|\berror\b|exited with", re.IGNORECASE)
"""A line worth showing with the results: a failure, or a process that ended."""


def resident_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB; None where ``/proc`` cannot say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


RouteKey = tuple[str, str, str]


def summarise_routes(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]], window_s: float
) -> list[dict[str, Any]]:
    """Per (from, to, topic): messages in the window (summed over the instances that
    received it), their rate, and the worst p50/p99 of those instances.

    ``before`` and ``after`` are every process's ``/v1/routes`` rows, concatenated, each row
    tagged with ``process``.
    """
    earlier: dict[tuple[str, RouteKey], dict[str, Any]] = {
        (row["process"], _key(row)): row for row in before
    }
    merged: dict[RouteKey, dict[str, Any]] = {}
    for row in after:
        key = _key(row)
        start = earlier.get((row["process"], key))
        delta = int(row["messages"]) - (int(start["messages"]) if start is not None else 0)
        p50, p99 = _window_percentiles(start, row)
        entry = merged.setdefault(
            key,
            {"from": key[0], "to": key[1], "topic": key[2], "messages": 0,
             "p50_us": 0.0, "p99_us": 0.0, "instances": 0},
        )  # fmt: skip
        entry["messages"] += delta
        entry["instances"] += 1
        entry["p50_us"] = max(entry["p50_us"], p50)
        entry["p99_us"] = max(entry["p99_us"], p99)
    rows = sorted(merged.values(), key=lambda r: (-r["messages"], r["from"], r["to"]))
    for entry in rows:
        entry["per_second"] = round(entry["messages"] / window_s, 1)
    return rows


def _window_percentiles(start: dict[str, Any] | None, end: dict[str, Any]) -> tuple[float, float]:
    """p50 and p99 (µs) of what a process received between its two rows; those since it
    started when its rows carry no buckets."""
    if "buckets" not in end:
        return float(end["p50_us"]), float(end["p99_us"])
    earlier = {} if start is None else {int(b): int(n) for b, n in start["buckets"].items()}
    later = {int(b): int(n) for b, n in end["buckets"].items()}
    window = LatencyHistogram.between(earlier, later)
    return round(window.percentile(50) / 1e3, 1), round(window.percentile(99) / 1e3, 1)


def _key(row: dict[str, Any]) -> RouteKey:
    return (str(row["from"]), str(row["to"]), str(row["topic"]))


async def run_deployment_bench(
    *,
    symbols: int,
    quotes_per_second: float,
    instances: dict[EngineType, int],
    warmup_s: float,
    window_s: float,
    url: str | None = None,
    marketdata_url: str | None = None,
    port_offset: int = 0,
    engines: Sequence[EngineType] = ALL_ENGINES,
    crash_after_s: float | None = None,
) -> dict[str, Any]:
    """``crash_after_s``: play the flash-crash scenario, that many seconds after the hub is
    ready, and report how fast each Strategy instance halted (from its ``/health``)."""
    servers: list[RedisServer] = []
    if url is None:
        # As deployed (docs/deploy.md): the logic bus on AOF, fsync always; market data none.
        servers = [RedisServer().start(), RedisServer(aof=True).start()]
        marketdata_url, url = servers[0].url, servers[1].url
    try:
        return await _measure(
            url, marketdata_url, servers, symbols=symbols, rate=quotes_per_second,
            instances=instances, warmup_s=warmup_s, window_s=window_s,
            port_offset=port_offset, engines=engines, crash_after_s=crash_after_s,
        )  # fmt: skip
    finally:
        for server in servers:
            server.stop()


async def _measure(
    url: str,
    marketdata_url: str | None,
    servers: list[RedisServer],
    *,
    symbols: int,
    rate: float,
    instances: dict[EngineType, int],
    warmup_s: float,
    window_s: float,
    port_offset: int,
    engines: Sequence[EngineType],
    crash_after_s: float | None,
) -> dict[str, Any]:
    if not 1 <= symbols <= len(DEFAULT_UNIVERSE):
        raise ValueError(f"symbols: 1 to {len(DEFAULT_UNIVERSE)} (the simulated universe)")
    config = PlatformConfig(symbols=tuple(DEFAULT_UNIVERSE[:symbols]), quotes_per_second=rate)
    if crash_after_s is not None:
        config = msgspec.structs.replace(
            config, scenario="flash-crash", crash_after_s=crash_after_s
        )
    with tempfile.TemporaryDirectory(prefix="starmesh-bench-") as workdir:
        config_path = Path(workdir) / "platform.json"
        config_path.write_bytes(msgspec.json.encode(config))
        chosen = [EngineType.MARKETDATA, *[e for e in engines if e is not EngineType.MARKETDATA]]
        specs = plan_processes(
            chosen, instances, url=url, marketdata_url=marketdata_url,
            config_path=str(config_path), instance_prefix="bench", port_offset=port_offset,
        )  # fmt: skip
        ready: set[str] = set()
        all_ready = asyncio.Event()
        tail: collections.deque[str] = collections.deque(maxlen=200)
        errors: list[str] = []

        def on_line(name: str, line: str) -> None:
            tail.append(f"{name} | {line}")
            if _TROUBLE.search(line):
                errors.append(f"{name} | {line}")
            if line.startswith("ready:"):
                ready.add(name)
                if len(ready) == len(specs):
                    all_ready.set()

        # The ledger engines keep theirs in the run's own directory: a fresh start each run.
        supervisor = Supervisor(
            specs, on_line=on_line, env={"STARMESH_DATA_DIR": workdir}, grace_s=20.0
        )
        stop = asyncio.Event()
        runner = asyncio.create_task(supervisor.run(stop))
        try:
            started = time.monotonic()
            try:
                await asyncio.wait_for(all_ready.wait(), READY_TIMEOUT_S)
            except TimeoutError:
                missing = sorted({s.name for s in specs} - ready)
                raise RuntimeError(
                    f"not ready after {READY_TIMEOUT_S:.0f} s: {missing}; last lines:\n"
                    + "\n".join(tail)
                ) from None
            startup_s = time.monotonic() - started
            await asyncio.sleep(warmup_s)  # the measured window starts after the warm-up
            results = await _window(supervisor, specs, servers, window_s, startup_s)
            results["errors"] = errors[:50]
            return results
        finally:
            stop.set()
            await runner


async def _window(
    supervisor: Supervisor,
    specs: Sequence[ProcessSpec],
    servers: list[RedisServer],
    window_s: float,
    startup_s: float,
) -> dict[str, Any]:
    pids = {child.spec.name: child.pid for child in supervisor.children if child.pid}
    for index, server in enumerate(servers):
        if server.pid is not None:
            pids[("redis-marketdata", "redis-logic")[index]] = server.pid
    engines = [spec for spec in specs if spec.engine is not EngineType.MARKETDATA]
    strategies = [spec for spec in engines if spec.engine is EngineType.STRATEGY]
    unread: list[str] = []
    async with httpx.AsyncClient(timeout=10.0) as http:
        meter = CpuMeter(pids)
        before = await _routes(http, engines, unread)
        halts_before = await _halt_latencies(http, strategies, unread)
        meter.start()
        began = time.monotonic()
        await asyncio.sleep(window_s)
        after = await _routes(http, engines, unread)
        cpu = meter.stop()
        elapsed = time.monotonic() - began
        halts_after = await _halt_latencies(http, strategies, unread)
    routes = summarise_routes(before, after, elapsed)
    restarts = {c.spec.name: c.restarts for c in supervisor.children if c.restarts}
    processes: list[dict[str, Any]] = []
    total_rss = 0.0
    for name, pid in pids.items():
        rss = resident_mb(pid)
        total_rss += rss or 0.0
        processes.append({"process": name, "cpu_cores": round(cpu.get(name, 0.0) / elapsed, 3),
                          "rss_mb": None if rss is None else round(rss, 1)})  # fmt: skip
    marketdata = sum(r["messages"] for r in routes if r["topic"].startswith("marketdata."))
    logic = sum(r["messages"] for r in routes) - marketdata
    return {
        "startup_s": round(startup_s, 1),
        "window_s": round(elapsed, 2),
        "processes": processes,
        "routes": routes,
        "mesh": {
            "handled_per_second": round((marketdata + logic) / elapsed, 1),
            "marketdata_per_second": round(marketdata / elapsed, 1),
            "logic_per_second": round(logic / elapsed, 1),
            "cpu_cores": round(sum(cpu.values()) / elapsed, 3),
            "rss_mb": round(total_rss, 1),
        },
        "worst_route": max(routes, key=lambda r: r["p99_us"], default=None),
        "halts": window_halts(halts_before, halts_after),
        "restarts": restarts,
        "unread": unread,
    }


def window_halts(
    before: dict[str, list[float]], after: dict[str, list[float]]
) -> dict[str, list[float]]:
    """Per Strategy instance, the latencies (µs) of the halts that took hold in the window:
    those its ``/health`` lists at the end and did not at the start (it lists the last 10, so
    a window with more halts than that shows only its last 10)."""
    return {name: latencies[len(before.get(name, [])) :] for name, latencies in after.items()}


async def _halt_latencies(
    http: httpx.AsyncClient, strategies: Sequence[ProcessSpec], unread: list[str]
) -> dict[str, list[float]]:
    """Each Strategy instance's ``halt_latency_us``: tick to halt, for its last halts."""
    found: dict[str, list[float]] = {}
    for spec in strategies:
        try:
            answer = await http.get(f"http://127.0.0.1:{spec.port}/health")
            answer.raise_for_status()
            found[spec.name] = list(answer.json()["status"]["detail"]["halt_latency_us"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            unread.append(f"{spec.name} /health: {type(exc).__name__}: {exc}")
    return found


async def _routes(
    http: httpx.AsyncClient, specs: Sequence[ProcessSpec], unread: list[str]
) -> list[dict[str, Any]]:
    """Every engine's ``/v1/routes``, each row tagged with its process; a process that
    cannot be read is named in ``unread`` (its routes are missing from the figures)."""

    async def one(spec: ProcessSpec) -> list[dict[str, Any]]:
        try:
            answer = await http.get(f"http://127.0.0.1:{spec.port}/v1/routes")
            answer.raise_for_status()
            return [{**row, "process": spec.name} for row in answer.json()]
        except (httpx.HTTPError, ValueError) as exc:
            unread.append(f"{spec.name}: {type(exc).__name__}: {exc}")
            return []

    rows: list[dict[str, Any]] = []
    for found in await asyncio.gather(*(one(spec) for spec in specs)):
        rows.extend(found)
    return rows
