"""Backtests: the trading engines over history or a generated market, on a simulated clock.

The engines are the live ones (Strategy, Portfolio, Risk, Collateral, VPIN, Features, ML,
Analytics) plus the Backtesting engine, on an embedded bus of the run's own, built by the same
composition root. The clock moves with the data, timers due before an event fire before it,
and every message an event causes is handled before the next: the same inputs give the same
fills and the same equity curve.

Given a database, a run keeps its ledger there, under the account ``backtest-<run id>`` (a
run id already in the ledger is refused), and its report's fills and equity curve are read
back from the ledger: what the report says is what was kept.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from starmesh.core.clock import SimulatedClock
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.engines.backtesting import BacktestingConfig, BacktestingEngine
from starmesh.marketdata.sources.replay import ReplaySource
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig
from starmesh.platform.simulation import MARKET_OPEN_NS, ReplayMarketRun, SimulatedMarketRun
from starmesh.storage import Storage

__all__ = [
    "BACKTEST_ENGINES",
    "BacktestLedgerError",
    "BacktestResult",
    "account_of",
    "daily_config",
    "metrics_summary",
    "run_backtest",
]

BACKTEST_ENGINES: tuple[EngineType, ...] = (
    EngineType.RISK,
    EngineType.COLLATERAL,
    EngineType.VPIN,
    EngineType.FEATURES,
    EngineType.ML,
    EngineType.ANALYTICS,
    EngineType.BACKTESTING,
    EngineType.PORTFOLIO,
    EngineType.STRATEGY,
)
_DAY_S = 86_400.0
_SHOWN_STEP = 0.001
"""The least ``on_progress`` is told the run moved on (1.0 is always told)."""
_IN_PROCESS_TIMEOUT_S = 30.0
"""Wall seconds Portfolio waits for Risk: in one process the answer always comes; a short
deadline could only make a run differ from the next under load."""

Progress = Callable[[float], Awaitable[None] | None]


class BacktestLedgerError(ValueError):
    """The run cannot keep its ledger where it was asked to (its run id is taken)."""


class BacktestResult(msgspec.Struct, frozen=True):
    run_id: str
    source: str
    symbols: tuple[str, ...]
    start: str
    end: str
    events: int
    wall_s: float
    fills: list[dict[str, Any]]
    equity_curve: list[tuple[int, float]]
    metrics: dict[str, Any]
    ledger: dict[str, str] | None = None
    """Where the run's ledger is (``database``, ``account``), when it kept one."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0

    def report(self) -> dict[str, Any]:
        """The JSON report: everything, and the speed of the run."""
        return {**msgspec.to_builtins(self), "events_per_s": round(self.events_per_s, 1)}


def metrics_summary(metrics: Mapping[str, Any]) -> str:
    """Analytics' headline figures as a reader wants them, for the command's last line and
    the plot's title: ratios to two decimals, the drawdown as a percentage, "n/a" for a
    figure too few returns could give."""

    def shown(name: str, form: str, unit: str = "") -> str:
        value = metrics.get(name)
        return "n/a" if value is None else format(value, form) + unit

    return (
        f"return {shown('return_pct', '.2f', '%')}, Sharpe {shown('sharpe', '.2f')}, "
        f"Sortino {shown('sortino', '.2f')}, max drawdown {shown('max_drawdown', '.2%')}, "
        f"trades {shown('trades', 'd')}"
    )


def daily_config(config: PlatformConfig) -> PlatformConfig:
    """``config`` with every period counted in daily bars rather than in seconds: one bar a
    day moves the simulated clock a day at a time, so a timer of one second would fire 86,400
    times between two bars.
    """
    day = _DAY_S
    r = msgspec.structs.replace
    return r(
        config,
        heartbeat_s=10 * day,
        strategy=r(config.strategy, prediction_ttl_s=1.5 * day, toxicity_ttl_s=5 * day),
        portfolio=r(config.portfolio, balance_interval_s=day),
        risk=r(
            config.risk,
            sample_interval_s=day,
            flash_crash_window_s=1.5 * day,
            flash_crash_cooldown_s=5 * day,
            toxic_for_s=10 * day,
        ),
        vpin=r(config.vpin, bar_s=day),
        features=r(config.features, bar_s=day),
        collateral=r(config.collateral_config(), status_interval_s=day, seconds_per_day=day),
        analytics=r(
            config.analytics_config(),
            sample_interval_s=day,
            publish_interval_s=5 * day,
            trading_seconds_per_year=252 * day,
        ),
    )


def account_of(run_id: str) -> str:
    """The account a backtest trades in: its own, never the live one."""
    return f"backtest-{run_id}"


def _prepared(config: PlatformConfig, run_id: str) -> PlatformConfig:
    r = msgspec.structs.replace
    return r(
        config,
        account=account_of(run_id),
        engines=BACKTEST_ENGINES,
        scenario=None,
        portfolio=r(config.portfolio, risk_check_timeout_s=_IN_PROCESS_TIMEOUT_S),
        backtesting=BacktestingConfig(run_id=run_id),
    )


async def run_backtest(
    config: PlatformConfig,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    seconds: float = 23_400.0,
    run_id: str = "backtest",
    on_progress: Progress | None = None,
    database_url: str | None = None,
    settings: Settings | None = None,
) -> BacktestResult:
    """Run the engines over ``config``'s source: the replay between ``start`` and ``end`` (a
    day per bar), or ``seconds`` of the simulated market. ``on_progress(fraction)`` follows it.
    ``database_url``: keep the run's ledger there and report from it (see the module).
    """
    config = _prepared(config, run_id)
    settings = settings or Settings()
    if config.source == "replay":  # a checkpoint a day of history, not 17,280
        settings = settings.model_copy(update={"checkpoint_interval_s": _DAY_S})
    storage = None
    if database_url is not None:
        storage = await Storage.open(database_url, settings=settings)
    try:
        return await _run(config, storage, start=start, end=end, seconds=seconds,
                          run_id=run_id, on_progress=on_progress)  # fmt: skip
    finally:
        if storage is not None:
            await storage.close()


async def _run(
    config: PlatformConfig,
    storage: Storage | None,
    *,
    start: dt.date | None,
    end: dt.date | None,
    seconds: float,
    run_id: str,
    on_progress: Progress | None,
) -> BacktestResult:
    if storage is not None:
        await _refuse_a_taken_run_id(storage, config.account)
    if config.source == "replay":
        config = daily_config(config)
        history = ReplaySource()
        bars = {s: await history.series(s) for s in config.symbols}
        first = min(b.ts_start for series in bars.values() for b in series)
        begin_ns = first if start is None else _ns(start)
        clock = SimulatedClock(begin_ns - 1)
    else:
        clock = SimulatedClock(MARKET_OPEN_NS)
    platform = Platform(config, clock=clock, storage=storage)
    wall = time.perf_counter()
    await platform.start()
    backtesting = platform.engines[EngineType.BACKTESTING]
    assert isinstance(backtesting, BacktestingEngine)

    shown = -1.0

    async def progress(fraction: float) -> None:
        nonlocal shown
        await backtesting.progress(fraction)
        # A bar needs a thousand steps at most; a run has one per event.
        if on_progress is not None and (fraction >= 1.0 or fraction - shown >= _SHOWN_STEP):
            shown = fraction
            result = on_progress(fraction)
            if result is not None:
                await result

    try:
        if config.source == "replay":
            run = ReplayMarketRun(platform, start=start, end=end)
            events = await run.run(progress)
            first_ns, last_ns = run.first_ns, run.last_ns
        else:
            driver = SimulatedMarketRun(platform)
            first_ns = clock.now_ns()
            events = await driver.run_for(seconds, progress)
            last_ns = clock.now_ns()
        # One more publishing period, so Analytics' last figures include the last event.
        await clock.advance_to(
            clock.now_ns() + round(config.analytics_config().publish_interval_s * 1e9),
            platform.settle,
        )
        await progress(1.0)
        await platform.settle()
    finally:
        await platform.stop()
    wall_s = time.perf_counter() - wall
    metrics: dict[str, Any] = {}
    if backtesting.metrics is not None:
        m = backtesting.metrics
        metrics = {"sharpe": m.sharpe, "sortino": m.sortino, "max_drawdown": m.max_drawdown,
                   "trades": m.trades, "win_rate": m.win_rate, "turnover": m.turnover,
                   "return_pct": m.return_pct, "pnl": m.pnl}  # fmt: skip
    fills = [msgspec.to_builtins(f) for f in backtesting.fills]
    equity_curve = list(backtesting.equity_curve)
    ledger = None
    if storage is not None:  # what the ledger kept, not what the engines remember
        fills, equity_curve = await _read_back(storage, config.account)
        ledger = {"database": storage.database.shown, "account": config.account}
    return BacktestResult(
        run_id=run_id,
        source=config.source,
        symbols=config.symbols,
        start=_iso(first_ns),
        end=_iso(last_ns),
        events=events,
        wall_s=round(wall_s, 3),
        fills=fills,
        equity_curve=equity_curve,
        metrics=metrics,
        ledger=ledger,
    )


async def _refuse_a_taken_run_id(storage: Storage, account: str) -> None:
    taken = await storage.fills(account=account, limit=1) or await storage.equity(
        account=account, limit=1
    )
    if taken:
        raise BacktestLedgerError(
            f"the ledger {storage.database.shown} already holds a run {account!r}: "
            "give this one another --run-id"
        )


async def _read_back(
    storage: Storage, account: str
) -> tuple[list[dict[str, Any]], list[tuple[int, float]]]:
    """The run's fills (in the report's shape) and equity curve, as the ledger kept them."""
    fills = [
        {"ts_ns": f.ts_ns, "order_id": f.order_id, "symbol": f.symbol, "side": f.side.upper(),
         "quantity": f.quantity, "price": f.price, "fee": f.commission}
        for f in await storage.fills(account=account)
    ]  # fmt: skip
    curve = [(e.ts_ns, e.equity) for e in await storage.equity(account=account)]
    return fills, curve


def _ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).isoformat()
