"""A backtest's headline figures, rounded as a reader wants them: the command's last line and
the plot's title say the same."""

from __future__ import annotations

from starmesh.platform.backtest import metrics_summary


def test_ratios_to_two_decimals_and_the_drawdown_as_a_percentage() -> None:
    metrics = {"return_pct": -0.3312, "sharpe": -304.1741113097227, "sortino": -412.006,
               "max_drawdown": 0.004115, "trades": 218}  # fmt: skip
    assert metrics_summary(metrics) == (
        "return -0.33%, Sharpe -304.17, Sortino -412.01, max drawdown 0.41%, trades 218"
    )


def test_a_figure_too_few_returns_could_give_is_not_available_not_zero() -> None:
    metrics = {"return_pct": 0.0, "sharpe": None}
    assert metrics_summary(metrics) == (
        "return 0.00%, Sharpe n/a, Sortino n/a, max drawdown n/a, trades n/a"
    )
