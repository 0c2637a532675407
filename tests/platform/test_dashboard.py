"""The dashboard in a real headless Chromium, against a running platform."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets
from playwright.async_api import Browser, Page, async_playwright

from starmesh import EngineType, MessagePriority, create_messagebus_client
from starmesh.core.payloads import FlashCrashAlert, RiskAlert
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig
from starmesh.storage import AlertRecord, EquityRecord, Storage
from tests.helpers import eventually

SCREENSHOTS = Path(__file__).resolve().parents[2] / "bench-results"
# The flags a root user in a sandbox without a network needs (see scripts/ensure-chromium).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # fmt: skip


def chromium() -> str:
    for candidate in (os.environ.get("STARMESH_TEST_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise RuntimeError("no chromium: `make test` installs it (scripts/ensure-chromium)")


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    config = PlatformConfig(symbols=("AAPL", "MSFT", "NVDA"), quotes_per_second=150)
    running = Platform(config, dashboard=("127.0.0.1", 0))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def number(page: Page, selector: str) -> float:
    text = (await page.text_content(selector)) or ""
    return float(text.replace(",", "").rstrip("%") or "nan")


async def test_the_dashboard_moves_and_shows_an_injected_alert(
    platform: Platform, browser: Browser
) -> None:
    assert platform.dashboard_url is not None
    page = await browser.new_page(viewport={"width": 1400, "height": 1100})
    await page.goto(platform.dashboard_url)
    await page.wait_for_selector("#connection.up", timeout=10_000)
    # Numbers move: messages arrive, the engines and routes fill in, equity is shown.
    await page.wait_for_function(
        "Number(document.getElementById('messages-total').textContent.replace(/,/g, '')) > 0",
        timeout=15_000,
    )
    first = await number(page, "#messages-total")
    total = "Number(document.getElementById('messages-total').textContent.replace(/,/g, ''))"
    await page.wait_for_function(f"{total} > {first}", timeout=15_000)
    await page.wait_for_selector("#engines tbody tr >> nth=5", timeout=15_000)
    await page.wait_for_selector("#routes tbody tr", timeout=15_000)
    await page.wait_for_selector("#topology .edge", timeout=15_000)
    assert (await number(page, "#equity-value")) > 0
    # An alert injected on the bus appears; a flash crash can't be missed. How long it took
    # is recorded beside the screenshot (the goal is a second), never asserted: on a loaded
    # machine a wall-clock deadline fails for reasons that are not the dashboard's.
    async with create_messagebus_client(EngineType.RISK, instance="injector") as risk:
        alert = RiskAlert(rule="var", severity="warning", message="injected VaR alert 42")
        sent = time.perf_counter()
        await risk.publish("risk.alert.var", alert, priority=MessagePriority.URGENT)
        await page.wait_for_selector("#alerts li:has-text('injected VaR alert 42')", timeout=10_000)
        alert_shown_s = time.perf_counter() - sent
        crash = FlashCrashAlert(symbol="MSFT", price_from=400, price_to=360, window_ms=800,
                                message="MSFT fell 10.0% in 0.8 s")  # fmt: skip
        await risk.publish("risk.alert.flash_crash", crash, priority=MessagePriority.FLASH_CRASH)
        await page.wait_for_selector("#flash-banner:not(.hidden)", timeout=10_000)
    assert "FLASH CRASH" in (await page.text_content("#flash-banner") or "")
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    timing = {"alert_shown_ms": round(alert_shown_s * 1000, 1), "goal_ms": 1000}
    (SCREENSHOTS / "dashboard-alert.json").write_text(json.dumps(timing) + "\n")
    # What the browser was sent is the route websocket -> *.
    shown = [r for r in platform.meter.routes() if (r["from"], r["to"]) == ("websocket", "*")]
    assert shown
    assert shown[0]["messages"] > 0
    assert 0 < shown[0]["p50_us"] <= shown[0]["p99_us"]


async def test_a_client_that_sends_garbage_stays_connected_and_leaving_cleans_up(
    platform: Platform,
) -> None:
    assert platform.dashboard_url is not None
    url = platform.dashboard_url.replace("http://", "ws://") + "ws"
    gateway = platform.engines[EngineType.WEBSOCKET]
    async with websockets.connect(url) as socket:
        await socket.send("{not json")
        error = json.loads(await socket.recv())
        assert error["type"] == "error"
        assert "not a command" in error["message"]
        await socket.send(json.dumps({"subscribe": ["bad pattern with spaces"]}))
        assert "whitespace" in json.loads(await socket.recv())["message"]
        await socket.send(json.dumps({"subscribe": ["system.health.*"]}))
        frame: dict[str, Any] = {"type": ""}
        while frame["type"] != "messages":  # the platform frame may come first
            frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert frame["messages"]
        assert all(m["topic"].startswith("system.health.") for m in frame["messages"])
        assert len(gateway.sessions) == 1  # type: ignore[attr-defined]
    await eventually(lambda: not gateway.sessions, what="the session cleaned up")  # type: ignore[attr-defined]


async def test_a_restarted_platform_shows_its_past_from_the_ledger(
    browser: Browser, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    day_ago = time.time_ns() - 86_400 * 10**9
    past = [(day_ago + n * 10**9, equity) for n, equity in enumerate((100_000.0, 100_750.5))]
    alert = RiskAlert(rule="drawdown", severity="warning", message="logged drawdown alert 7")
    storage = await Storage.open(url)
    try:
        ledger = storage.ledger("portfolio", "paper")
        for ts, equity in past:
            ledger.record(EquityRecord(account="paper", ts_ns=ts, cash=equity, equity=equity,
                                       gross_exposure=0, net_exposure=0, realised_pnl=0,
                                       unrealised_pnl=0, commissions=0))  # fmt: skip
        ledger.record(AlertRecord(id="past-alert-1", ts_ns=day_ago, source="risk",
                                  rule="drawdown", symbol=None, severity="warning", halt=False,
                                  cleared=False, message=alert.message,
                                  payload=msgspec.json.encode(alert).decode()))  # fmt: skip
    finally:
        await storage.close()
    config = PlatformConfig(symbols=("AAPL", "MSFT"), quotes_per_second=100)
    running = Platform(config, dashboard=("127.0.0.1", 0), database_url=url)
    await running.start()
    try:
        assert running.dashboard_url is not None
        async with httpx.AsyncClient() as http:
            history = (await http.get(running.dashboard_url + "v1/history")).json()
        assert history["account"] == "paper"
        assert [tuple(point) for point in history["equity"][:2]] == past
        (logged,) = [a for a in history["alerts"] if a["id"] == "past-alert-1"]
        assert logged["ts_event"] == day_ago
        assert logged["payload"]["message"] == "logged drawdown alert 7"
        assert logged["payload"]["_type"] == "risk_alert"
        page = await browser.new_page()
        await page.goto(running.dashboard_url)
        await page.wait_for_selector("#alerts li:has-text('logged drawdown alert 7')",
                                     timeout=10_000)  # fmt: skip
        shown = await page.text_content("#history") or ""
        assert shown.startswith("history: ")
        assert int(shown.split()[1]) >= len(past)
    finally:
        await running.stop()
