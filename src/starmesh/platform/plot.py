"""A backtest's picture: equity, drawdown and the metrics, as a PNG (matplotlib, no screen)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from starmesh.platform.backtest import BacktestResult, metrics_summary

__all__ = ["plot_backtest"]


def plot_backtest(result: BacktestResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    if not result.equity_curve:
        raise ValueError("the backtest has no equity curve to draw")
    times = [dt.datetime.fromtimestamp(ts / 1e9, tz=dt.UTC) for ts, _ in result.equity_curve]
    equity = np.array([e for _, e in result.equity_curve])
    drawdown = 1 - equity / np.maximum.accumulate(equity)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 1])
    top.plot(times, equity, linewidth=1.0)
    top.set_ylabel("equity")
    top.grid(alpha=0.3)
    bottom.fill_between(times, -100 * drawdown, 0, color="tab:red", alpha=0.5)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    top.set_title(
        f"{result.run_id}: {_symbols(result.symbols)} {result.start[:10]} to {result.end[:10]}"
        f"\n{metrics_summary(result.metrics)}",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _symbols(symbols: tuple[str, ...]) -> str:
    """The symbols, or how many when the title could not hold them (50 ran off the page)."""
    return ", ".join(symbols) if len(symbols) <= 6 else f"{len(symbols)} symbols"
