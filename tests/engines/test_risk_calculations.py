"""Risk's calculations with known answers: VaR and ES, drawdown, the flash-crash detector,
the pre-trade check and the book's historical returns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from starmesh.core.payloads import OrderCheck, RiskLimits
from starmesh.engines.risk import (
    DrawdownTracker,
    FlashCrashDetector,
    PreTradeCheck,
    ReturnHistory,
    expected_shortfall,
    historical_var,
)

SECOND = 1_000_000_000
TEN = [-0.05, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
HUNDRED_AND_ONE = [n / 1000 for n in range(-50, 51)]  # -5.0% to +5.0% in 0.1% steps


def test_var_and_es_on_a_fixed_series_computed_by_hand() -> None:
    # 10% quantile of TEN, linear: position 0.1 * 9 = 0.9 between -0.05 and -0.03 -> -0.032.
    assert historical_var(TEN, 0.90) == pytest.approx(0.032, abs=1e-12)
    # Returns at or below -0.032: only -0.05.
    assert expected_shortfall(TEN, 0.90) == pytest.approx(0.05, abs=1e-12)
    # Defaults: VaR 99% = -(1% quantile) = -(position 1.0) = 0.049.
    assert historical_var(HUNDRED_AND_ONE) == pytest.approx(0.049, abs=1e-12)
    # ES 97.5%: 2.5% quantile at position 2.5 -> -0.0475; returns at or below it are
    # -0.050, -0.049, -0.048, whose mean is -0.049.
    assert expected_shortfall(HUNDRED_AND_ONE) == pytest.approx(0.049, abs=1e-12)


def test_var_and_es_agree_with_numpy_on_a_random_series() -> None:
    returns = np.random.default_rng(3).standard_t(4, size=2_000) * 0.01
    cutoff = np.quantile(returns, 0.01)
    assert historical_var(returns) == pytest.approx(-cutoff)
    q = np.quantile(returns, 0.025)
    assert expected_shortfall(returns) == pytest.approx(-returns[returns <= q].mean())


@pytest.mark.parametrize(
    ("returns", "confidence", "message"),
    [
        ([], 0.99, "non-empty"),
        ([0.01, math.nan], 0.99, "finite"),
        ([0.01], 1.0, "between 0 and 1"),
    ],
)
def test_var_refuses_what_it_cannot_measure(
    returns: list[float], confidence: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        historical_var(returns, confidence)


def test_drawdown_from_the_peak() -> None:
    tracker = DrawdownTracker()
    assert tracker.update(100.0) == 0.0
    assert tracker.update(120.0) == 0.0
    assert tracker.update(90.0) == pytest.approx(0.25)  # 30 below the peak of 120
    assert tracker.update(130.0) == 0.0
    assert tracker.peak == 130.0


def test_flash_crash_is_a_fall_beyond_the_threshold_within_the_window() -> None:
    detector = FlashCrashDetector(threshold=0.05, window_s=10.0)
    assert detector.update("X", 0, 100.0) is None
    assert detector.update("X", 2 * SECOND, 99.0) is None
    assert detector.update("X", 5 * SECOND, 95.0) is None  # exactly 5%: not more than
    crash = detector.update("X", 9 * SECOND, 94.9)
    assert crash is not None
    assert (crash.price_from, crash.price_to, crash.window_ns) == (100.0, 94.9, 9 * SECOND)
    assert crash.drop == pytest.approx(0.051)
    # Reported once: the window starts again from the crash price.
    assert detector.update("X", 9 * SECOND + 1, 94.0) is None


def test_a_high_older_than_the_window_does_not_count() -> None:
    detector = FlashCrashDetector(threshold=0.05, window_s=10.0)
    assert detector.update("X", 0, 100.0) is None
    assert detector.update("X", 3 * SECOND, 97.0) is None
    # 11 s later the 100 has left the window; the highest in it is 97: a 3.1% fall.
    assert detector.update("X", 11 * SECOND, 94.0) is None
    assert detector.update("Y", 11 * SECOND, 50.0) is None  # other symbols are apart
    crash = detector.update("X", 12 * SECOND, 92.0)  # 97 -> 92 in 9 s: 5.15%
    assert crash is not None
    assert crash.price_from == 97.0


def limits(**overrides: object) -> RiskLimits:
    values: dict[str, object] = {
        "max_position_notional": 10_000.0,
        "max_gross_notional": 25_000.0,
        "max_orders_per_second": 3,
    }
    values.update(overrides)
    return RiskLimits(**values)  # type: ignore[arg-type]


def order(side: str = "BUY", quantity: float = 50, price: float = 100.0, position: float = 0.0,
          symbol: str = "AAPL") -> OrderCheck:  # fmt: skip
    return OrderCheck(order_id="o", symbol=symbol, side=side, quantity=quantity,  # type: ignore[arg-type]
                      price=price, position=position)  # fmt: skip


def test_pre_trade_position_limit_and_reductions() -> None:
    check = PreTradeCheck(limits(max_orders_per_second=100))
    assert check.check(order(quantity=100), {}, {}, 0).approved  # 10,000: at the limit
    refused = check.check(order(quantity=101), {}, {}, 0)
    assert not refused.approved
    assert refused.reason == "AAPL position would be 10,100 over the limit of 10,000"
    # Held 150 (over the limit since prices rose): selling 40 reduces risk and goes through.
    assert check.check(order("SELL", 40, position=150), {"AAPL": 150}, {}, 0).approved
    # Reversing from +50 to -120 is 12,000 short: refused.
    assert not check.check(order("SELL", 170, position=50), {"AAPL": 50}, {}, 0).approved
    # A tighter limit for one symbol only.
    tight = PreTradeCheck(limits(symbol_position_notional={"AAPL": 2_000.0}))
    assert not tight.check(order(quantity=30), {}, {}, 0).approved
    assert tight.check(order(quantity=30, symbol="MSFT"), {}, {}, 0).approved


def test_pre_trade_gross_limit_counts_the_rest_of_the_book() -> None:
    check = PreTradeCheck(limits(max_orders_per_second=100))
    book = {"MSFT": -150.0, "NVDA": 50.0}  # 15,000 + 5,000 = 20,000 gross at these prices
    prices = {"MSFT": 100.0, "NVDA": 100.0}
    assert check.check(order(quantity=50), book, prices, 0).approved  # 25,000
    refused = check.check(order(quantity=51), book, prices, 0)
    assert refused.reason == "gross notional would be 25,100 over the limit of 25,000"


def test_pre_trade_order_rate_in_a_sliding_second() -> None:
    check = PreTradeCheck(limits(max_orders_per_second=3))
    for at in (0, SECOND // 4, SECOND // 2):
        assert check.check(order(quantity=1), {}, {}, at).approved
    assert check.check(order(quantity=1), {}, {}, SECOND - 1).reason == (
        "max orders per second (3) reached"
    )
    assert check.check(order(quantity=1), {}, {}, SECOND).approved  # the first has left


def test_book_returns_apply_todays_weights_to_past_returns() -> None:
    history = ReturnHistory(window=3)
    for prices in ({"A": 100.0, "B": 50.0}, {"A": 110.0, "B": 50.0}, {"A": 99.0, "B": 55.0}):
        history.sample(prices)
    assert history.depth(["A", "B"]) == 2
    # Long 6,000 of A and short 2,000 of B on 10,000 of capital: weights 0.6 and -0.2.
    # Returns: A +10%, -10%; B 0%, +10% -> book 0.06 and -0.08.
    book = history.book_returns({"A": 6_000.0, "B": -2_000.0}, 10_000.0)
    assert book == pytest.approx([0.06, -0.08])
    assert history.book_returns({}, 10_000.0).size == 0
