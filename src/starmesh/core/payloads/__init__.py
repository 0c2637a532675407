"""Typed payloads: the schemas of market data and of the business messages engines exchange.

Every payload is a frozen msgspec Struct tagged in the field ``_type`` (``{"_type": "quote",
...}`` on the wire), so a receiver decodes it back into the same class and a client in
another language can send one by setting ``_type``. A plain ``dict`` payload is also allowed;
it travels as an untagged map.
"""

from __future__ import annotations

from starmesh.core.enums import MessageType
from starmesh.core.payloads.base import Finite, Payload, PriceLevel, Severity, Side
from starmesh.core.payloads.marketdata import (
    Bar,
    BarSeries,
    BookLevel2,
    EconomicObservation,
    EconomicSeries,
    Fundamental,
    MarketData,
    MarketDataFailure,
    MarketDataQuery,
    MarketDataReply,
    NewsFeed,
    NewsItem,
    Quote,
    Snapshot,
    Trade,
)
from starmesh.core.payloads.models import (
    BacktestProgress,
    FactorAttribution,
    FactorCovariance,
    FactorReturns,
    FactorUpdate,
    FeatureUpdate,
    MarketStructure,
    PerformanceMetrics,
    Prediction,
    ToxicityWarning,
)
from starmesh.core.payloads.operations import (
    ErrorInfo,
    HealthStatus,
)
from starmesh.core.payloads.risk import (
    FlashCrashAlert,
    MarginCall,
    MarginStatus,
    RiskAlert,
    RiskLimitBreach,
    RiskLimits,
)
from starmesh.core.payloads.trading import (
    Fill,
    Order,
    OrderCheck,
    OrderCheckResult,
    PortfolioBalance,
    PositionChange,
    Rebalance,
    TradingSignal,
)

__all__ = [
    "PAYLOAD_MESSAGE_TYPES",
    "PAYLOAD_TYPES",
    "BacktestProgress",
    "Bar",
    "BarSeries",
    "BookLevel2",
    "EconomicObservation",
    "EconomicSeries",
    "ErrorInfo",
    "FactorAttribution",
    "FactorCovariance",
    "FactorReturns",
    "FactorUpdate",
    "FeatureUpdate",
    "Fill",
    "Finite",
    "FlashCrashAlert",
    "Fundamental",
    "HealthStatus",
    "MarginCall",
    "MarginStatus",
    "MarketData",
    "MarketDataFailure",
    "MarketDataQuery",
    "MarketDataReply",
    "MarketStructure",
    "NewsFeed",
    "NewsItem",
    "Order",
    "OrderCheck",
    "OrderCheckResult",
    "Payload",
    "PerformanceMetrics",
    "PortfolioBalance",
    "PositionChange",
    "Prediction",
    "PriceLevel",
    "Quote",
    "Rebalance",
    "RiskAlert",
    "RiskLimitBreach",
    "RiskLimits",
    "Severity",
    "Side",
    "Snapshot",
    "ToxicityWarning",
    "Trade",
    "TradingSignal",
]


PAYLOAD_MESSAGE_TYPES: dict[type[Payload], MessageType] = {
    Quote: MessageType.QUOTE,
    Trade: MessageType.TRADE,
    Bar: MessageType.BAR,
    BarSeries: MessageType.BAR,
    BookLevel2: MessageType.LEVEL2,
    Fundamental: MessageType.FUNDAMENTAL,
    EconomicSeries: MessageType.ECONOMIC,
    NewsItem: MessageType.NEWS,
    NewsFeed: MessageType.NEWS,
    Snapshot: MessageType.EVENT,
    MarketDataQuery: MessageType.REQUEST,
    MarketDataReply: MessageType.REPLY,
    TradingSignal: MessageType.STRATEGY_SIGNAL,
    Order: MessageType.ORDER,
    Fill: MessageType.FILL,
    PositionChange: MessageType.POSITION_CHANGE,
    PortfolioBalance: MessageType.PORTFOLIO_BALANCE,
    Rebalance: MessageType.REBALANCE,
    OrderCheck: MessageType.REQUEST,
    OrderCheckResult: MessageType.REPLY,
    RiskLimits: MessageType.RISK_LIMITS,
    RiskAlert: MessageType.RISK_ALERT,
    RiskLimitBreach: MessageType.RISK_LIMIT_BREACH,
    MarginStatus: MessageType.MARGIN_STATUS,
    MarginCall: MessageType.MARGIN_CALL,
    FlashCrashAlert: MessageType.FLASH_CRASH_ALERT,
    Prediction: MessageType.ML_PREDICTION,
    ToxicityWarning: MessageType.TOXICITY_WARNING,
    MarketStructure: MessageType.MARKET_STRUCTURE,
    PerformanceMetrics: MessageType.PERFORMANCE_METRIC,
    FactorUpdate: MessageType.FACTOR_UPDATE,
    FactorReturns: MessageType.FACTOR_UPDATE,
    FactorCovariance: MessageType.FACTOR_UPDATE,
    FactorAttribution: MessageType.PERFORMANCE_METRIC,
    FeatureUpdate: MessageType.FEATURE_UPDATE,
    BacktestProgress: MessageType.BACKTEST_PROGRESS,
    HealthStatus: MessageType.ENGINE_HEALTH,
    ErrorInfo: MessageType.ERROR,
}
"""The message type a typed payload implies when a publisher does not name one."""

PAYLOAD_TYPES: tuple[type[Payload], ...] = tuple(PAYLOAD_MESSAGE_TYPES)
"""Every typed payload class; the codec decodes any of them by its ``_type`` tag."""
