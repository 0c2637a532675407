"""Blocking work (a replay file, EDGAR's ~1 MB ticker list) runs off the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest
import respx

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.payloads import Bar
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.edgar import EdgarSource
from starmesh.marketdata.sources.replay import ReplaySource, load_bars
from tests.marketdata.sources.cases import EDGAR_AGENT
from tests.marketdata.sources.support import RecordingSleep, answer

TICKERS = "https://www.sec.gov/files/company_tickers.json"


async def test_a_replay_file_is_read_while_the_loop_keeps_running(tmp_path: Path) -> None:
    """Before: the file was read inside fetch, on the loop: this loader then waited in vain
    for a loop task to let it go (the loop was blocked in it), and the test failed."""
    path = tmp_path / "ACME.csv"
    path.write_text("date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,1000\n")
    let_go = threading.Event()
    released: list[bool] = []

    def loader(symbol: str, file: Path) -> list[Bar]:
        released.append(let_go.wait(timeout=5))  # only a running loop can set it
        return load_bars(symbol, file)

    source = ReplaySource(files={"ACME": path}, clock=ManualClock(), loader=loader)
    fetching = asyncio.create_task(source.fetch(DataRequest.of("replay", DataType.QUOTE, "ACME")))
    while not fetching.done() and not let_go.is_set():
        await asyncio.sleep(0.001)
        let_go.set()
    await fetching
    assert released == [True]


async def test_edgar_parses_its_ticker_list_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch, respx_mock: respx.MockRouter
) -> None:
    """Before: the ticker list was decoded and converted on the loop's thread."""
    threads: list[int] = []
    parse = EdgarSource._tickers_from

    def recording(self: EdgarSource, response: httpx.Response) -> dict[str, int]:
        threads.append(threading.get_ident())
        return parse(self, response)

    monkeypatch.setattr(EdgarSource, "_tickers_from", recording)
    respx_mock.get(TICKERS).mock(return_value=answer("edgar", "company_tickers.json"))
    settings = Settings(edgar_user_agent=EDGAR_AGENT)
    source = EdgarSource(settings, ManualClock(), sleep=RecordingSleep())
    try:
        assert await source._cik("AAPL") == 320193
    finally:
        await source.aclose()
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
