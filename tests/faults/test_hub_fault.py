"""Fault 4: the hub's Redis goes down, then the hub process too: get_data answers over the
hub's HTTP, then from the stale value the engine holds."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from starmesh import DataType, EngineType, create_marketdata_client
from starmesh.core.errors import MarketDataError
from starmesh.testing import RedisServer
from tests.faults.harness import ROOT, FaultReport
from tests.faults.settings import fault_settings
from tests.serving import free_port

Q = DataType.QUOTE


def start_hub(url: str, port: int, prefix: str) -> subprocess.Popen[str]:
    """``starmesh hub`` in its own process, as an operator runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "starmesh", "hub", "--url", url, "--port", str(port),
         "--sources", "simulated"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "STARMESH_KEY_PREFIX": prefix},
    )  # fmt: skip


async def test_get_data_goes_bus_then_hub_http_then_stale(
    redis_alone: RedisServer, key_prefix: str
) -> None:
    port = free_port()
    hub = start_hub(redis_alone.url, port, key_prefix)
    report = FaultReport("hub: its Redis down, then the hub process down")
    settings = fault_settings(key_prefix, request_timeout=2.0)
    engine = create_marketdata_client(
        EngineType.STRATEGY, url=redis_alone.url, hub_http_url=f"http://127.0.0.1:{port}",
        settings=settings,
    )  # fmt: skip
    try:
        assert hub.stdout is not None
        assert "MarketData Hub up" in hub.stdout.readline()
        async with engine:
            first = await engine.get_data(["AAPL", "MSFT"], Q)
            assert engine.stats()["bus_requests"] == 1
            redis_alone.kill()
            started = time.monotonic()
            over_http = await engine.get_data(["AAPL", "NVDA"], Q)  # asked of the hub again
            report.switch_s = round(time.monotonic() - started, 3)
            assert engine.stats()["http_fallbacks"] == 1
            assert not over_http["NVDA"][Q].stale
            hub.kill()
            hub.communicate(timeout=10)
            started = time.monotonic()
            stale = await engine.get_data(["MSFT", "NVDA"], Q)
            report.recover_s = round(time.monotonic() - started, 3)
            assert all(stale[s][Q].stale for s in ("MSFT", "NVDA"))
            assert stale["MSFT"][Q].seq == first["MSFT"][Q].seq
            with pytest.raises(MarketDataError, match="nothing is cached for TSLA"):
                await engine.get_data("TSLA", Q)
            stats = engine.stats()
            report.sent = 4
            report.notes = (
                "switch_s: a get_data with Redis down (bus try + HTTP); recover_s: a get_data "
                f"with the hub down too (stale). Client counts: {stats}"
            )
    finally:
        hub.kill()
        hub.communicate(timeout=10)
        report.write()
