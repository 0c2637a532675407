"""Analytics: performance of the book and its factor attribution."""

from starmesh.engines.analytics.engine import AnalyticsConfig, AnalyticsEngine
from starmesh.engines.analytics.performance import (
    TradeStats,
    factor_attribution,
    max_drawdown,
    sharpe_ratio,
    simple_returns,
    sortino_ratio,
)

__all__ = [
    "AnalyticsConfig",
    "AnalyticsEngine",
    "TradeStats",
    "factor_attribution",
    "max_drawdown",
    "sharpe_ratio",
    "simple_returns",
    "sortino_ratio",
]
