"""The features on short series computed by hand (and RSI against Wilder's published example)."""

from __future__ import annotations

import math

import pytest

from starmesh.core.payloads import BookLevel2, Quote
from starmesh.engines.features import (
    Rsi,
    SymbolFeatures,
    book_imbalance,
    log_return,
    realised_volatility,
    spread_bps,
)

# The 14-day RSI example of StockCharts' ChartSchool (Wilder's method): the first RSI is
# 70.46, then 66.25, 66.48, 69.35, 66.29, 57.92.
CLOSES = [44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03,
          45.61, 46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64]  # fmt: skip


def test_rsi_follows_wilders_example() -> None:
    rsi = Rsi(14)
    values = [rsi.update(close) for close in CLOSES]
    assert values[:14] == [None] * 14
    assert [round(v, 2) for v in values[14:] if v is not None] == [
        70.46, 66.25, 66.48, 69.35, 66.29, 57.92,
    ]  # fmt: skip


def test_rsi_of_a_one_way_market() -> None:
    rising = Rsi(3)
    for close in (1.0, 2.0, 3.0, 4.0):
        rising.update(close)
    assert rising.value == 100.0
    flat = Rsi(3)
    for _ in range(4):
        flat.update(5.0)
    assert flat.value == 50.0


def test_returns_volatility_spread_and_imbalance() -> None:
    closes = [100.0, 101.0, 99.0, 102.0]
    assert log_return(closes, 1) == pytest.approx(math.log(102 / 99))
    assert log_return(closes, 3) == pytest.approx(math.log(1.02))
    assert log_return(closes, 4) is None
    # sqrt(ln(101/100)^2 + ln(99/101)^2 + ln(102/99)^2)
    expected = math.sqrt(sum(math.log(b / a) ** 2 for a, b in ((100, 101), (101, 99), (99, 102))))
    assert realised_volatility(closes, 3) == pytest.approx(expected)
    assert realised_volatility(closes, 2) == pytest.approx(
        math.sqrt(math.log(99 / 101) ** 2 + math.log(102 / 99) ** 2)
    )
    assert spread_bps(99.99, 100.01) == pytest.approx(2.0)
    bids = [(10.0, 300.0), (9.99, 200.0), (9.98, 100.0), (9.97, 100.0), (9.96, 100.0),
            (9.95, 5_000.0)]  # fmt: skip
    asks = [(10.01, 100.0), (10.02, 100.0)]
    # Top five: bids 800, asks 200 -> (800 - 200) / 1,000; the sixth bid level is not counted.
    assert book_imbalance(bids, asks) == pytest.approx(0.6)
    assert book_imbalance([], []) == 0.0


def test_a_symbol_publishes_its_features_when_a_bar_closes() -> None:
    second = 1_000_000_000
    state = SymbolFeatures("X", bar_ns=second, book_levels=5)

    def quote(mid: float) -> Quote:
        return Quote(symbol="X", bid=mid - 0.01, ask=mid + 0.01, bid_size=1, ask_size=1)

    state.book(BookLevel2(symbol="X", bids=[(9.99, 300.0)], asks=[(10.01, 100.0)]))
    assert state.quote(0, quote(10.0)) is None
    assert state.quote(second // 2, quote(10.5)) is None  # same bar: the close moves
    first = state.quote(second, quote(11.0))  # closes bar 0 at 10.5
    assert first == {"spread_bps": pytest.approx(0.02 / 11.0 * 1e4), "imbalance_5": 0.5}
    state.vpin = 0.3
    second_bar = state.quote(2 * second, quote(12.0))  # closes bar 1 at 11.0
    assert second_bar is not None
    assert second_bar["ret_1"] == pytest.approx(math.log(11.0 / 10.5))
    assert second_bar["vpin"] == 0.3
    assert "ret_5" not in second_bar
    assert "rsi_14" not in second_bar
