"""Backtests: the live engines over history or a generated market, the same every run."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from starmesh.engines.strategy import StrategyConfig
from starmesh.platform.backtest import BacktestLedgerError, BacktestResult, run_backtest
from starmesh.platform.config import PlatformConfig
from starmesh.platform.history import summarise
from starmesh.platform.plot import plot_backtest
from starmesh.storage import Storage

REPLAY = PlatformConfig(symbols=("^GSPC", "^IXIC"), source="replay",
                        strategy=StrategyConfig(notional=40_000))  # fmt: skip
SIMULATED = PlatformConfig(symbols=("AAPL", "MSFT", "NVDA"), quotes_per_second=30,
                           market_speed=1.0)  # fmt: skip


def _day(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).date()


async def replay_2016() -> BacktestResult:
    return await run_backtest(REPLAY, start=dt.date(2016, 1, 1), end=dt.date(2016, 12, 31))


async def test_a_replay_backtest_trades_and_reports_from_the_engines() -> None:
    progress: list[float] = []
    result = await run_backtest(
        REPLAY, start=dt.date(2016, 1, 1), end=dt.date(2016, 12, 31),
        on_progress=progress.append,
    )  # fmt: skip
    assert result.start.startswith("2016-01-04")  # the first trading day of 2016
    assert result.end.startswith("2016-12-30")
    assert result.events == 2 * 252  # a quote a day of each index (the engines follow quotes)
    assert result.fills, "the crossover traded"
    fill = result.fills[0]
    assert set(fill) == {"ts_ns", "order_id", "symbol", "side", "quantity", "price", "fee"}
    # Strategy sized by notional: each fill takes the position to the whole number of units
    # that 40,000 buys at the fill's price, long or short (opening, reversing, or trimming a
    # position a halt kept from reversing).
    held: dict[str, float] = {}
    for fill in result.fills:
        assert fill["quantity"] == int(fill["quantity"])
        sign = 1 if fill["side"] == "BUY" else -1
        position = held[fill["symbol"]] = held.get(fill["symbol"], 0) + sign * fill["quantity"]
        assert 40_000 - fill["price"] < abs(position) * fill["price"] <= 40_000
    # 2016-06-24 (the S&P 500 fell 3.6%): Risk's flash-crash alert, handled by Strategy inside
    # its publish, halts Strategy before Strategy sees that day's quote: no sell into the crash.
    crash_day = [f for f in result.fills if _day(f["ts_ns"]) == dt.date(2016, 6, 24)]
    assert crash_day == []
    assert result.metrics["trades"] == len(result.fills)
    assert {"sharpe", "sortino", "max_drawdown"} <= set(result.metrics)
    assert result.metrics["max_drawdown"] > 0
    times = [ts for ts, _ in result.equity_curve]
    assert times == sorted(times)
    assert len(times) == len(set(times))  # one point per instant
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    report = json.loads(json.dumps(result.report()))
    assert report["events_per_s"] > 0
    assert report["equity_curve"][-1][1] > 0


async def test_progress_is_told_in_thousandths_not_per_event() -> None:
    progress: list[float] = []
    result = await run_backtest(SIMULATED, seconds=120, on_progress=progress.append)
    assert result.events > 3_000  # a step per quote: far more steps than a bar can show
    assert progress[-1] == 1.0
    steps = [later - earlier for earlier, later in itertools.pairwise(progress)]
    assert min(steps[:-1]) >= 0.001
    assert len(progress) <= 1_002


async def test_two_runs_give_the_same_fills_and_equity_curve() -> None:
    first, second = await replay_2016(), await replay_2016()
    assert first.fills == second.fills
    assert first.equity_curve == second.equity_curve
    assert first.metrics == second.metrics
    simulated = [await run_backtest(SIMULATED, seconds=120) for _ in range(2)]
    assert simulated[0].fills
    assert simulated[0].fills == simulated[1].fills
    assert simulated[0].equity_curve == simulated[1].equity_curve
    other = await run_backtest(
        PlatformConfig(symbols=("AAPL", "MSFT", "NVDA"), quotes_per_second=30,
                       market_speed=1.0, seed=8),
        seconds=120,
    )  # fmt: skip
    assert other.fills != simulated[0].fills


async def test_with_a_ledger_the_report_is_what_the_ledger_kept(database_url: str) -> None:
    kept = await run_backtest(REPLAY, start=dt.date(2016, 1, 1), end=dt.date(2016, 12, 31),
                              database_url=database_url, run_id="kept")  # fmt: skip
    in_memory = await run_backtest(REPLAY, start=dt.date(2016, 1, 1),
                                   end=dt.date(2016, 12, 31), run_id="kept")  # fmt: skip
    assert kept.fills
    assert kept.fills == in_memory.fills  # read back from the database, the same to the bit
    assert kept.equity_curve == in_memory.equity_curve
    assert kept.metrics == in_memory.metrics
    assert kept.ledger is not None
    assert kept.ledger["account"] == "backtest-kept"
    storage = await Storage.open(database_url, create=False)
    try:
        summary = await summarise(storage, account="backtest-kept")
    finally:
        await storage.close()
    assert len(summary.fills) == len(kept.fills)
    held: dict[str, float] = {}
    for fill in kept.fills:
        signed = fill["quantity"] if fill["side"] == "BUY" else -fill["quantity"]
        held[fill["symbol"]] = held.get(fill["symbol"], 0.0) + signed
    assert summary.positions == {s: q for s, q in sorted(held.items()) if q}
    with pytest.raises(BacktestLedgerError, match="already holds a run 'backtest-kept'"):
        await run_backtest(REPLAY, start=dt.date(2017, 1, 1), end=dt.date(2017, 3, 31),
                           database_url=database_url, run_id="kept")  # fmt: skip


async def test_the_plot_is_a_well_formed_picture(tmp_path: Path) -> None:
    result = await replay_2016()
    path = tmp_path / "equity.png"
    plot_backtest(result, path)
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1000, 600)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None
    assert len(colours) > 20


def test_the_command_writes_the_report_and_the_plot(tmp_path: Path) -> None:
    report, plot = tmp_path / "report.json", tmp_path / "equity.png"
    runs = f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "starmesh", "backtest", "--from", "2018-01-01", "--to",
         "2018-06-30", "--report", str(report), "--plot", str(plot), "--database-url", runs,
         "--run-id", "h1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "events from 2018-01-02 to 2018-06-29" in result.stdout
    assert "account backtest-h1" in result.stdout
    written = json.loads(report.read_text())
    assert {"fills", "equity_curve", "metrics", "events_per_s"} <= set(written)
    assert written["ledger"]["account"] == "backtest-h1"
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    kept = subprocess.run(
        [sys.executable, "-m", "starmesh", "ledger", "--database-url", runs, "--account",
         "backtest-h1", "--json"], capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["fills"] == len(written["fills"])
    again = subprocess.run(
        [sys.executable, "-m", "starmesh", "backtest", "--from", "2018-01-01", "--to",
         "2018-01-31", "--database-url", runs, "--run-id", "h1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 2
    said = " ".join((again.stdout + again.stderr).replace("│", " ").split())  # rich's box
    assert "already holds a run 'backtest-h1': give this one another --run-id" in said
    bad = subprocess.run(
        [sys.executable, "-m", "starmesh", "backtest", "--from", "2018-06-30", "--to",
         "2018-01-01"], capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--to is before --from" in bad.stdout + bad.stderr
