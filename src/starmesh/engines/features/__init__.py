"""Features: returns, volatility, RSI, spread, book imbalance and VPIN per symbol."""

from starmesh.engines.features.engine import (
    FEATURE_NAMES,
    FeaturesConfig,
    FeaturesEngine,
    SymbolFeatures,
)
from starmesh.engines.features.indicators import (
    Rsi,
    book_imbalance,
    log_return,
    realised_volatility,
    spread_bps,
)

__all__ = [
    "FEATURE_NAMES",
    "FeaturesConfig",
    "FeaturesEngine",
    "Rsi",
    "SymbolFeatures",
    "book_imbalance",
    "log_return",
    "realised_volatility",
    "spread_bps",
]
