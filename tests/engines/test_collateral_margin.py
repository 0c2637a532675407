"""Reg T margin and collateral value on a fixed long/short book."""

from __future__ import annotations

import pytest

from starmesh.engines.collateral import (
    HaircutTable,
    collateral_value,
    margin_requirement,
)

BOOK = {"AAPL": 100.0, "SIM0001": 200.0, "TSLA": -50.0, "FLAT": 0.0}
PRICES = {"AAPL": 200.0, "SIM0001": 10.0, "TSLA": 300.0}
# Market values: AAPL +20,000, SIM0001 +2,000, TSLA -15,000 (FLAT holds nothing).


def test_margin_of_a_long_short_book() -> None:
    requirement = margin_requirement(BOOK, PRICES)
    # Initial: 50% of |20,000| + |2,000| + |-15,000| = 18,500.
    assert requirement.initial == pytest.approx(18_500.0)
    # Maintenance: 25% of the 22,000 long + 30% of the 15,000 short = 5,500 + 4,500.
    assert requirement.maintenance == pytest.approx(10_000.0)


def test_collateral_value_after_haircuts() -> None:
    haircuts = HaircutTable(frozenset({"AAPL", "TSLA"}))
    assert haircuts("AAPL") == 0.15
    assert haircuts("SIM0001") == 0.25
    # Cash 50,000 + AAPL 20,000 x 0.85 + SIM0001 2,000 x 0.75 - TSLA 15,000 owed.
    value = collateral_value(50_000.0, BOOK, PRICES, haircuts)
    assert value == pytest.approx(50_000 + 17_000 + 1_500 - 15_000)
    # Excess liquidity over maintenance: 53,500 - 10,000.
    assert value - margin_requirement(BOOK, PRICES).maintenance == pytest.approx(43_500.0)
    # Negative cash (a margin loan) is owed in full.
    assert collateral_value(-1_000.0, {}, {}, haircuts) == -1_000.0


def test_a_position_without_a_price_cannot_be_margined() -> None:
    with pytest.raises(ValueError, match="no price for TSLA"):
        margin_requirement({"TSLA": -1.0}, {})


def test_haircuts_are_fractions() -> None:
    with pytest.raises(ValueError, match="other_equity"):
        HaircutTable(frozenset(), other_equity=1.5)
