"""Performance of a fixed equity curve and a few trades, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from starmesh.core.payloads import Fill
from starmesh.engines.analytics import (
    TradeStats,
    factor_attribution,
    max_drawdown,
    sharpe_ratio,
    simple_returns,
    sortino_ratio,
)

EQUITY = [100.0, 110.0, 99.0, 108.9, 130.68]
# Returns: +10%, -10%, +10%, +20%.


def test_returns_sharpe_sortino_and_drawdown_of_a_fixed_curve() -> None:
    returns = simple_returns(EQUITY)
    assert returns == pytest.approx([0.10, -0.10, 0.10, 0.20])
    # mean 0.075; sample variance ((.025)^2 + (.175)^2 + (.025)^2 + (.125)^2) / 3 = 0.0475 / 3,
    # so the sample standard deviation is 0.125831; x sqrt(4) periods a year.
    assert sharpe_ratio(returns, periods_per_year=4) == pytest.approx(0.075 / 0.125831 * 2, 1e-5)
    # Downside deviation sqrt((0 + 0.01 + 0 + 0) / 4) = 0.05.
    assert sortino_ratio(returns, periods_per_year=4) == pytest.approx(0.075 / 0.05 * 2)
    # Peak 110, trough 99: 10%.
    assert max_drawdown(EQUITY) == pytest.approx(0.10)
    assert max_drawdown([100.0, 120.0, 90.0, 130.0, 65.0]) == pytest.approx(0.5)


def test_ratios_that_cannot_be_measured_are_none() -> None:
    assert sharpe_ratio(np.array([0.01]), 252) is None
    assert sharpe_ratio(np.array([0.01, 0.01, 0.01]), 252) is None  # no variation
    assert sortino_ratio(np.array([0.01, 0.02]), 252) is None  # no loss
    assert simple_returns([100.0]).size == 0
    assert max_drawdown([]) == 0.0


def fill(symbol: str, side: str, quantity: float, price: float, fee: float = 1.0) -> Fill:
    return Fill(order_id="o", symbol=symbol, side=side, quantity=quantity, price=price, fee=fee)  # type: ignore[arg-type]


def test_win_rate_and_traded_notional() -> None:
    stats = TradeStats()
    stats.record(fill("X", "BUY", 100, 10.0))  # opens
    assert stats.record(fill("X", "SELL", 50, 11.0)) == pytest.approx(50.0)  # a win (49 net)
    assert stats.record(fill("X", "SELL", 50, 9.0)) == pytest.approx(-50.0)  # a loss
    stats.record(fill("Y", "SELL", 10, 20.0))  # opens a short
    stats.record(fill("Y", "BUY", 10, 19.95))  # realises 0.50, less the 1.00 fee: a loss
    assert (stats.closing_trades, stats.winning_trades) == (3, 1)
    assert stats.win_rate == pytest.approx(1 / 3)
    assert stats.traded_notional == pytest.approx(1_000 + 550 + 450 + 200 + 199.5)
    assert stats.fills == 5


def test_factor_attribution_of_a_two_stock_book() -> None:
    holdings = {"A": 60_000.0, "B": -20_000.0, "C": 5_000.0}  # C has no exposures given
    exposures = {"A": {"market": 1.0, "mom": 1.5}, "B": {"market": 1.0, "mom": -0.5}}
    factor_returns = {"market": 0.01, "mom": -0.002}
    book, contributions = factor_attribution(holdings, 100_000.0, exposures, factor_returns)
    # market: 0.6 - 0.2 = 0.4; mom: 0.6 x 1.5 + (-0.2) x (-0.5) = 1.0.
    assert book == pytest.approx({"market": 0.4, "mom": 1.0})
    assert contributions == pytest.approx({"market": 0.004, "mom": -0.002})
    assert math.fsum(contributions.values()) == pytest.approx(0.002)
    assert factor_attribution(holdings, 0.0, exposures, factor_returns) == ({}, {})
