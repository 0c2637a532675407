"""Style exposures and factor returns on a small deterministic panel, against toraniko itself."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from toraniko.model import estimate_factor_returns

from starmesh.core.payloads import Bar, Fundamental
from starmesh.engines.factor import STYLES, build_panel, sector_frame, style_exposures
from starmesh.engines.toraniko import estimate

DAY = 86_400 * 10**9
SECTORS = {"A": "Tech", "B": "Tech", "C": "Energy", "D": "Energy", "E": "Health", "F": "Health",
           "G": "Tech", "H": "Energy", "I": "Health", "J": "Tech"}  # fmt: skip


def bars(symbol: str, closes: list[float]) -> list[Bar]:
    return [
        Bar(symbol=symbol, interval="1d", ts_start=1_704_067_200 * 10**9 + i * DAY, open=c,
            high=c, low=c, close=c, volume=1e6)
        for i, c in enumerate(closes)
    ]  # fmt: skip


def fundamental(symbol: str, shares: float) -> Fundamental:
    return Fundamental(symbol=symbol, period="TTM", sector=SECTORS[symbol], metrics={
        "shares_outstanding": shares, "book_value": shares * 20, "revenue": shares * 30,
        "free_cash_flow": shares * (2 + ord(symbol) % 5),
    })  # fmt: skip


def universe(days: int) -> tuple[dict[str, list[Bar]], dict[str, Fundamental]]:
    rng = np.random.default_rng(2024)
    history = {}
    for symbol in SECTORS:
        returns = rng.normal(0.0005, 0.015, days)
        history[symbol] = bars(symbol, list(100 * np.cumprod(1 + returns)))
    funds = {s: fundamental(s, 1e8 * (1 + i)) for i, s in enumerate(SECTORS)}
    return history, funds


def test_the_panel_from_bars_and_fundamentals() -> None:
    history, funds = universe(3)
    panel = build_panel(history, funds)
    a = history["A"]
    first = panel.returns.filter(pl.col("symbol") == "A").row(0, named=True)
    assert first["date"] == dt.date(2024, 1, 2)
    assert first["asset_returns"] == pytest.approx(a[1].close / a[0].close - 1)
    cap = panel.market_caps.filter(pl.col("symbol") == "A").row(0, named=True)["market_cap"]
    assert cap == pytest.approx(1e8 * a[1].close)
    values = panel.values.filter(pl.col("symbol") == "A").row(0, named=True)
    assert values["book_price"] == pytest.approx(1e8 * 20 / cap)
    assert panel.sectors == SECTORS
    assert panel.returns.height == 10 * 2  # two returns from three bars


def test_sector_frame_is_one_hot() -> None:
    frame = sector_frame(pl.Series([dt.date(2024, 1, 2), dt.date(2024, 1, 3)]), SECTORS)
    assert frame.columns == ["date", "symbol", "Energy", "Health", "Tech"]
    assert frame.height == 20
    assert (
        frame.select(pl.sum_horizontal("Energy", "Health", "Tech")).to_series().to_list()
        == [1.0] * 20
    )


def test_factor_returns_match_toraniko_and_sectors_sum_to_zero() -> None:
    history, funds = universe(160)
    panel = build_panel(history, funds)
    styles = style_exposures(panel, momentum_days=60, momentum_half_life=20, momentum_lag=5)
    assert styles.columns == ["date", "symbol", *STYLES]
    assert styles["date"].n_unique() == 160 - 1 - (60 + 5) + 1  # first full momentum window
    # Each date's scores are standardised across the universe.
    day = styles.filter(pl.col("date") == styles["date"].max())
    assert day["mom_score"].mean() == pytest.approx(0.0, abs=1e-12)
    assert day["mom_score"].std() == pytest.approx(1.0)
    sectors = sector_frame(styles["date"], panel.sectors)
    model = estimate(panel.returns, panel.market_caps, sectors, styles)
    assert model.factors == ["market", "Energy", "Health", "Tech", *STYLES]
    assert model.returns["date"].is_sorted()
    # The library's own output for the same input, put in date order, is the same.
    expected, residuals = estimate_factor_returns(panel.returns, panel.market_caps, sectors, styles)
    expected = expected.sort("date").select("date", *model.factors)
    assert model.returns.equals(expected)
    assert model.residuals.select("date", *sorted(SECTORS)).equals(
        residuals.sort("date").select("date", *sorted(SECTORS))
    )
    # Sector returns sum to zero every day: the market is spanned by the sectors.
    sums = model.returns.select(pl.sum_horizontal("Energy", "Health", "Tech")).to_numpy()
    assert np.abs(sums).max() < 1e-15
    covariance = model.covariance
    assert covariance.shape == (len(model.factors),) * 2
    assert np.allclose(covariance, covariance.T)
    market = model.returns["market"].to_numpy()
    assert covariance[0, 0] == pytest.approx(np.var(market, ddof=1))
    assert math.isfinite(float(covariance.sum()))
