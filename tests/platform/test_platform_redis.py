"""The same trading loop over a real Redis: all in one process, then an engine per process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from starmesh.core.config import Settings
from starmesh.engines.features import FeaturesConfig
from starmesh.engines.risk import RiskConfig
from starmesh.engines.strategy import StrategyConfig
from starmesh.engines.vpin import VpinConfig
from starmesh.platform.composition import Platform
from starmesh.platform.config import TRADING_ENGINES, PlatformConfig
from starmesh.platform.report import flash_crash_outcome
from starmesh.platform.routes import ALL_ROUTES, missing_routes
from starmesh.testing import RedisServer
from tests.helpers import eventually

# A busy little market, so that every route speaks within seconds: five symbols, 200 quotes
# a second, the market ten minutes a second, small VPIN buckets, a tight gross limit.
BUSY = PlatformConfig(
    symbols=("AAPL", "MSFT", "NVDA", "AMZN", "SPY"),
    quotes_per_second=200,
    market_speed=600,
    heartbeat_s=0.5,
    strategy=StrategyConfig(fast_window=3, slow_window=8),
    risk=RiskConfig(max_gross_notional=100_000),
    vpin=VpinConfig(bucket_volume=300, window=5, min_history=5),
    features=FeaturesConfig(bar_s=0.2),
)


async def test_the_platform_in_one_process_over_redis(
    redis_server: RedisServer, key_prefix: str
) -> None:
    platform = Platform(BUSY, url=redis_server.url, settings=Settings(key_prefix=key_prefix))
    assert platform.transport() == f"Redis {redis_server.url}"
    await platform.start()
    try:
        await eventually(
            lambda: not missing_routes(platform.meter.routes(), ALL_ROUTES),
            timeout=90,
            what="every route carrying messages over Redis",
        )
        # Factor is warming up until its first exposures are out, and a route counts once its
        # first message is delivered: on a loaded machine the two are not the same instant.
        await eventually(
            lambda: set(platform.engine_states().values()) == {"up"},
            timeout=60,
            what="every engine up (warm-ups done)",
        )
    finally:
        await platform.stop()
    assert platform.states_at_stop == dict.fromkeys(platform.engine_states(), "up")


async def test_a_flash_crash_over_redis_halts_strategy_before_its_next_signal(
    redis_server: RedisServer, key_prefix: str
) -> None:
    config = msgspec.structs.replace(
        BUSY, engines=TRADING_ENGINES, scenario="flash-crash", crash_after_s=1.0
    )
    platform = Platform(config, url=redis_server.url, settings=Settings(key_prefix=key_prefix))
    await platform.start()
    try:
        await eventually(
            lambda: flash_crash_outcome(platform).get("detected") is True,
            timeout=60,
            what="the crash detected by Risk and Strategy halted, over Redis",
        )
        outcome = flash_crash_outcome(platform)
    finally:
        await platform.stop()
    assert outcome["symbol"] == "AAPL"
    assert outcome["halt_latency_us"] > 0
    assert outcome["signals_while_halted"] == 0
    assert outcome["buy_signals_before_clearance"] == 0


ENGINES = ("marketdata", "risk", "collateral", "vpin", "features", "ml", "toraniko",
           "analytics", "factor", "portfolio", "strategy")  # fmt: skip


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "platform.json"
    path.write_bytes(msgspec.json.encode(BUSY))
    return path


def spawn_engine(name: str, url: str, prefix: str, config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "starmesh", "engine", name, "--url", url,
         "--config", str(config), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "STARMESH_KEY_PREFIX": prefix},
    )  # fmt: skip


@pytest.fixture
def processes() -> Iterator[dict[str, subprocess.Popen[str]]]:
    started: dict[str, subprocess.Popen[str]] = {}
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)  # reaped, its pipes closed (even after a failure)


async def test_an_engine_per_process_over_redis(
    redis_server: RedisServer,
    key_prefix: str,
    config_file: Path,
    processes: dict[str, subprocess.Popen[str]],
) -> None:
    for name in ENGINES:
        processes[name] = spawn_engine(name, redis_server.url, key_prefix, config_file)
    addresses = {}
    for name, process in processes.items():
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        match = re.search(rf"ready: {name} on (http://127\.0\.0\.1:\d+)", line)
        assert match, (
            f"{name} did not start: {line!r} {process.stderr.read() if process.stderr else ''}"
        )
        addresses[name] = match.group(1)
    async with httpx.AsyncClient(timeout=5) as http:

        async def routes() -> list[dict[str, object]]:
            carried: list[dict[str, object]] = []
            for name, address in addresses.items():
                if name != "marketdata":
                    carried.extend((await http.get(f"{address}/v1/routes")).json())
            return carried

        async def all_routes_carried() -> bool:
            return not missing_routes(await routes(), ALL_ROUTES)

        await eventually(all_routes_carried, timeout=120, what="every route across processes")
        health = (await http.get(f"{addresses['risk']}/health")).json()
        assert health["status"]["state"] in ("running", "degraded")
        assert {"portfolio", "strategy", "vpin", "collateral"} <= set(health["peers"])
        metrics = (await http.get(f"{addresses['strategy']}/metrics")).text
        assert 'starmesh_route_messages_total{source="risk",target="strategy"' in metrics
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    for name, process in processes.items():
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"{name}: {err}"
        assert "Traceback" not in err, f"{name}: {err}"


async def test_the_hubs_process_plays_the_flash_crash_and_strategy_halts_in_its_own(
    redis_server: RedisServer,
    key_prefix: str,
    tmp_path: Path,
    processes: dict[str, subprocess.Popen[str]],
) -> None:
    # The market at its own pace (no jumps in the few seconds this takes), so the only crash
    # of NVDA is the scenario's, played by the hub's process 2 s after it is ready.
    config = msgspec.structs.replace(
        BUSY, market_speed=1.0, scenario="flash-crash", crash_after_s=2.0, crash_symbol="NVDA"
    )
    path = tmp_path / "crash.json"
    path.write_bytes(msgspec.json.encode(config))
    addresses = {}
    for name in ("risk", "strategy", "marketdata"):  # the followers first: none misses it
        processes[name] = spawn_engine(name, redis_server.url, key_prefix, path)
        process = processes[name]
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        match = re.search(rf"ready: {name} on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"{name} did not start: {line!r}"
        addresses[name] = match.group(1)
    async with httpx.AsyncClient(timeout=5) as http:

        async def strategy_detail() -> dict[str, Any]:
            health = (await http.get(f"{addresses['strategy']}/health")).json()
            detail: dict[str, Any] = health["status"]["detail"]
            return detail

        async def halted_on_the_crash() -> bool:
            return "flash_crash:NVDA" in (await strategy_detail())["halts"]

        await eventually(halted_on_the_crash, timeout=60, what="Strategy halted on NVDA's crash")
        latencies = (await strategy_detail())["halt_latency_us"]
    assert len(latencies) == 1
    assert latencies[0] > 0
