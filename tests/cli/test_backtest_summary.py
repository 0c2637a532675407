"""The backtest's closing line: Analytics' figures rounded as a reader wants them."""

from __future__ import annotations

from starmesh.cli.backtest import metrics_summary


def test_sharpe_to_two_decimals_and_the_drawdown_as_a_percentage() -> None:
    metrics = {"return_pct": -0.3312, "sharpe": -304.1741113097227, "max_drawdown": 0.004115}
    assert metrics_summary(metrics) == "return -0.33%, Sharpe -304.17, max drawdown 0.41%"


def test_a_figure_too_few_returns_could_give_is_not_available_not_zero() -> None:
    metrics = {"return_pct": 0.0, "sharpe": None}
    assert metrics_summary(metrics) == "return 0.00%, Sharpe n/a, max drawdown n/a"
