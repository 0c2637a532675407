"""Factor returns with toraniko: market, sectors and styles, each date's cross-section.

``toraniko.model.estimate_factor_returns`` (1.1.1) joins its inputs on date and symbol and
returns rows in no particular date order; this sorts them, and adds the covariance of the
factor returns over the dates estimated.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
from numpy.typing import NDArray
from toraniko.model import estimate_factor_returns

__all__ = ["FactorModel", "estimate"]


class FactorModel(NamedTuple):
    returns: pl.DataFrame
    """date, then one column per factor (market, the sectors, the styles), oldest first."""
    residuals: pl.DataFrame
    """date, then one column per symbol, oldest first."""
    factors: list[str]
    covariance: NDArray[np.float64]
    """Sample covariance of the factor returns over the dates estimated (factors x factors)."""


def estimate(
    returns: pl.DataFrame,
    market_caps: pl.DataFrame,
    sectors: pl.DataFrame,
    styles: pl.DataFrame,
    *,
    winsor_factor: float | None = 0.05,
    residualize_styles: bool = True,
) -> FactorModel:
    """Inputs in toraniko's columns: ``date, symbol, asset_returns``; ``date, symbol,
    market_cap``; ``date, symbol`` and a 0/1 column per sector; ``date, symbol`` and a score
    column per style. Dates missing from any input are not estimated.
    """
    factor_returns, residuals = estimate_factor_returns(
        returns, market_caps, sectors, styles,
        winsor_factor=winsor_factor, residualize_styles=residualize_styles,
    )  # fmt: skip
    ordered: pl.DataFrame = factor_returns.sort("date")
    factors = [c for c in ordered.columns if c != "date"]
    ordered = ordered.select("date", *factors)
    residual_frame: pl.DataFrame = residuals.sort("date")
    residual_frame = residual_frame.select("date", *sorted(c for c in residual_frame.columns
                                                           if c != "date"))  # fmt: skip
    matrix = ordered.select(factors).to_numpy()
    covariance = (
        np.cov(matrix, rowvar=False, ddof=1)
        if matrix.shape[0] > 1
        else np.zeros((len(factors), len(factors)))
    )
    return FactorModel(ordered, residual_frame, factors, np.atleast_2d(covariance))
