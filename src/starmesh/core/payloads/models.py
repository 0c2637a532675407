"""Models and analytics: predictions, order-flow toxicity, performance, factors, features."""

from __future__ import annotations

import msgspec

from starmesh.core.payloads.base import Finite, Fraction, NonNegative, Payload, Severity

__all__ = [
    "BacktestProgress",
    "FactorAttribution",
    "FactorCovariance",
    "FactorReturns",
    "FactorUpdate",
    "FeatureUpdate",
    "MarketStructure",
    "PerformanceMetrics",
    "Prediction",
    "ToxicityWarning",
]


class Prediction(Payload, tag="prediction", frozen=True):
    """A model's prediction for a symbol over a horizon, with its confidence."""

    model: str
    symbol: str
    horizon: str
    """How far ahead the prediction looks: ``1m``, ``1d``."""
    value: Finite
    confidence: Fraction
    probability_up: Fraction | None = None
    """For a direction classifier: the probability that the price rises over ``horizon``."""


class ToxicityWarning(Payload, tag="toxicity_warning", frozen=True):
    """A symbol's order flow is toxic: its VPIN stands high in its own history."""

    symbol: str
    vpin: Fraction
    threshold: Fraction
    """The CDF level above which flow counts as toxic."""
    severity: Severity
    cdf: Fraction | None = None
    """Where ``vpin`` stands in the symbol's trailing VPIN history."""


class MarketStructure(Payload, tag="market_structure", frozen=True):
    """One completed volume bucket of a symbol's order flow, as VPIN sees it."""

    symbol: str
    buy_volume: NonNegative
    sell_volume: NonNegative
    bucket_volume: NonNegative
    buckets: int
    """Buckets completed so far."""
    vpin: Fraction | None = None
    """None until a full window of buckets exists."""
    cdf: Fraction | None = None


class PerformanceMetrics(Payload, tag="performance_metrics", frozen=True):
    """A portfolio's performance over a window: P&L, return, Sharpe, drawdown, ..."""

    portfolio: str
    window: str
    pnl: Finite
    return_pct: Finite
    volatility: NonNegative
    sharpe: Finite | None = None
    max_drawdown: NonNegative = 0.0
    sortino: Finite | None = None
    win_rate: Fraction | None = None
    """Closing trades that made money, as a fraction of closing trades."""
    turnover: NonNegative = 0.0
    """Traded notional over average equity."""
    trades: int = 0


class FactorAttribution(Payload, tag="factor_attribution", frozen=True):
    """The book's return explained by factors: exposure x factor return, per factor."""

    portfolio: str
    as_of: str
    exposures: dict[str, float]
    """factor -> the book's exposure (equity-weighted sum of its holdings' exposures)."""
    factor_returns: dict[str, float]
    contributions: dict[str, float]
    """factor -> exposure x factor return."""


class FactorUpdate(Payload, tag="factor_update", frozen=True):
    """A factor model's factor returns for one date, and its assets' exposures."""

    model: str
    as_of: str
    """ISO date the factor returns are for."""
    factor_returns: dict[str, float]
    exposures: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    """symbol -> factor -> exposure; may be empty when only returns are sent."""


class FactorReturns(Payload, tag="factor_returns", frozen=True):
    """One date's factor returns from the factor model, and each asset's residual return."""

    model: str
    as_of: str
    returns: dict[str, float]
    """factor (market, each sector, each style) -> return."""
    residuals: dict[str, float] = msgspec.field(default_factory=dict)
    """symbol -> the part of its return no factor explains."""


class FactorCovariance(Payload, tag="factor_covariance", frozen=True):
    """The covariance of a factor model's daily factor returns."""

    model: str
    as_of: str
    factors: list[str]
    matrix: list[list[float]]
    """Covariance of daily factor returns, rows and columns in ``factors`` order."""
    observations: int


class FeatureUpdate(Payload, tag="feature_update", frozen=True):
    """A symbol's model features at a bar's close, by name (``ret_1``, ``rsi_14``, ...)."""

    symbol: str
    features: dict[str, float]


class BacktestProgress(Payload, tag="backtest_progress", frozen=True):
    """How far a backtest run has got, with its metrics so far."""

    run_id: str
    fraction_done: Fraction
    message: str = ""
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
