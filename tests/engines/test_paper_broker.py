"""The paper broker through a buy, a partial sell and a reversal, by hand."""

from __future__ import annotations

import pytest

from starmesh.core.payloads import Quote
from starmesh.engines.portfolio import CommissionSchedule, PaperBroker


def quote(bid: float, ask: float, symbol: str = "X") -> Quote:
    return Quote(symbol=symbol, bid=bid, ask=ask, bid_size=100, ask_size=100)


def test_buy_partial_sell_and_reversal() -> None:
    broker = PaperBroker(100_000.0)
    # Buy 100 at the ask, 10.00; commission max($1, 100 x $0.005) = $1.
    fill = broker.execute("o1", "X", "BUY", 100, quote(9.98, 10.00))
    assert (fill.price, fill.fee, fill.quantity) == (10.00, 1.0, 100)
    assert broker.cash == pytest.approx(100_000 - 1_000 - 1)
    assert broker.positions["X"].avg_cost == 10.00
    # Sell 40 at the bid, 12.00: realised 40 x (12 - 10) = 80.
    broker.execute("o2", "X", "SELL", 40, quote(12.00, 12.02))
    assert broker.position("X") == 60
    assert broker.realised_pnl == pytest.approx(80.0)
    assert broker.cash == pytest.approx(98_999 + 480 - 1)
    assert broker.positions["X"].avg_cost == 10.00  # reducing keeps the average cost
    # Sell 100 at 11.00: closes 60 (realised 60 x 1 = 60), opens 40 short at 11.00.
    broker.execute("o3", "X", "SELL", 100, quote(11.00, 11.02))
    assert broker.position("X") == -40
    assert broker.positions["X"].avg_cost == 11.00
    assert broker.realised_pnl == pytest.approx(140.0)
    assert broker.cash == pytest.approx(99_478 + 1_100 - 1)
    assert broker.commissions == 3.0
    # Marked at a mid of 10.50, the short has made 40 x 0.50.
    marks = {"X": 10.50}
    assert broker.unrealised_pnl(marks) == pytest.approx(20.0)
    assert broker.equity(marks) == pytest.approx(100_577 - 40 * 10.50)
    # Every dollar accounted for: equity - start = realised + unrealised - commissions.
    assert broker.equity(marks) - 100_000 == pytest.approx(140 + 20 - 3)
    assert broker.gross_exposure(marks) == pytest.approx(420.0)
    assert broker.market_value(marks) == pytest.approx(-420.0)


def test_adding_averages_the_cost_and_closing_resets_it() -> None:
    broker = PaperBroker(10_000.0)
    broker.execute("o1", "X", "BUY", 10, quote(9.9, 10.0))
    broker.execute("o2", "X", "BUY", 30, quote(11.9, 12.0))
    assert broker.positions["X"].avg_cost == pytest.approx((10 * 10 + 30 * 12) / 40)
    broker.execute("o3", "X", "SELL", 40, quote(13.0, 13.1))
    assert broker.position("X") == 0
    assert broker.positions["X"].avg_cost == 0.0
    assert broker.realised_pnl == pytest.approx(40 * 13.0 - 460)
    assert broker.open_positions() == {}


def test_slippage_moves_the_fill_against_the_order() -> None:
    broker = PaperBroker(1e6, slippage_bps=10)
    assert broker.execute("b", "X", "BUY", 1, quote(99.0, 100.0)).price == pytest.approx(100.1)
    assert broker.execute("s", "X", "SELL", 1, quote(99.0, 100.0)).price == pytest.approx(98.901)


def test_commission_schedule_minimum_per_share_and_cap() -> None:
    schedule = CommissionSchedule(per_share=0.005, minimum=1.0, maximum_fraction=0.01)
    assert schedule(100, 50.0) == 1.0  # the minimum
    assert schedule(1_000, 50.0) == 5.0  # per share
    assert schedule(300, 0.20) == pytest.approx(0.6)  # capped at 1% of 60 dollars


@pytest.mark.parametrize(
    ("quantity", "the_quote", "message"),
    [
        (0, quote(9.0, 10.0), "quantity must be positive"),
        (float("nan"), quote(9.0, 10.0), "quantity must be positive"),
        (1, quote(10.0, 9.0), "no fillable quote"),
        (1, quote(9.0, 10.0, symbol="Y"), "cannot fill on a Y quote"),
    ],
)
def test_bad_orders_are_refused_and_change_nothing(
    quantity: float, the_quote: Quote, message: str
) -> None:
    broker = PaperBroker(1_000.0)
    with pytest.raises(ValueError, match=message):
        broker.execute("o", "X", "BUY", quantity, the_quote)
    assert (broker.cash, broker.positions, broker.fills) == (1_000.0, {}, 0)


def test_marks_are_needed_for_open_positions() -> None:
    broker = PaperBroker(1_000.0)
    broker.execute("o", "X", "BUY", 1, quote(9.0, 10.0))
    with pytest.raises(ValueError, match="no mark for X"):
        broker.equity({})
