"""Style exposures of the universe with toraniko: momentum, size, value; and sector dummies."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import polars as pl
from toraniko.styles import factor_mom, factor_sze, factor_val

from starmesh.engines.factor.history import Panel

__all__ = ["STYLES", "sector_frame", "style_exposures"]

STYLES = ("mom_score", "sze_score", "val_score")


def style_exposures(
    panel: Panel,
    *,
    momentum_days: int = 252,
    momentum_half_life: int = 63,
    momentum_lag: int = 20,
) -> pl.DataFrame:
    """date, symbol and the three style scores, cross-sectionally standardised, for the dates
    where every style has a value (momentum needs ``momentum_days + momentum_lag`` of history).
    """
    with warnings.catch_warnings():
        # toraniko winsorizes each date's cross-section, including the first dates, where
        # momentum has no value yet; numpy then warns of an all-NaN slice. Those dates are
        # dropped below.
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        momentum: pl.DataFrame = factor_mom(
            panel.returns, trailing_days=momentum_days, half_life=momentum_half_life,
            lag=momentum_lag,
        ).collect()  # fmt: skip
    size: pl.DataFrame = factor_sze(panel.market_caps).collect()
    value: pl.DataFrame = factor_val(panel.values).collect()
    return (
        momentum.join(size, on=["date", "symbol"])
        .join(value, on=["date", "symbol"])
        .drop_nulls()
        .filter(pl.all_horizontal(pl.col(*STYLES).is_finite()))
        .sort("date", "symbol")
    )


def sector_frame(dates: pl.Series, sectors: Mapping[str, str]) -> pl.DataFrame:
    """date, symbol and one 0/1 column per sector (sorted by name), for every date given."""
    names = sorted(set(sectors.values()))
    symbols = sorted(sectors)
    per_symbol = pl.DataFrame(
        {"symbol": symbols, **{n: [float(sectors[s] == n) for s in symbols] for n in names}}
    )
    return pl.DataFrame({"date": dates.unique().sort()}).join(per_symbol, how="cross")
