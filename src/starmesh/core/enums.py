"""The closed vocabularies of starmesh: engines, priorities, message and data types.

Every enum's value is what appears on the wire, in Redis keys, logs and JSON, so values
are stable lower-case names (priorities are small integers, higher = more urgent).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = ["DataType", "EngineState", "EngineType", "MessagePriority", "MessageType"]


class EngineType(StrEnum):
    """An engine of the platform. Each engine *type* may run as several instances."""

    ANALYTICS = "analytics"
    RISK = "risk"
    FACTOR = "factor"
    ML = "ml"
    FEATURES = "features"
    WEBSOCKET = "websocket"
    STRATEGY = "strategy"
    MARKETDATA = "marketdata"
    PORTFOLIO = "portfolio"
    COLLATERAL = "collateral"
    VPIN = "vpin"
    BACKTESTING = "backtesting"
    TORANIKO = "toraniko"

    @property
    def default_port(self) -> int:
        """The engine's HTTP port when none is configured."""
        return _DEFAULT_PORTS[self]


_DEFAULT_PORTS: dict[EngineType, int] = {
    EngineType.ANALYTICS: 8100,
    EngineType.RISK: 8200,
    EngineType.FACTOR: 8300,
    EngineType.ML: 8400,
    EngineType.FEATURES: 8500,
    EngineType.WEBSOCKET: 8600,
    EngineType.STRATEGY: 8700,
    EngineType.MARKETDATA: 8800,
    EngineType.PORTFOLIO: 8900,
    EngineType.COLLATERAL: 9000,
    EngineType.VPIN: 10000,
    EngineType.BACKTESTING: 8110,
    EngineType.TORANIKO: 8310,
}


class EngineState(StrEnum):
    """Where an engine is in its life: ``starting -> running -> stopping -> stopped``.

    ``degraded`` is running on a fallback (a silent peer, a path down, still warming up);
    ``faulted`` is stopped by an error it could not recover from.
    """

    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAULTED = "faulted"

    @property
    def up(self) -> bool:
        """Handling messages (perhaps on a fallback)."""
        return self in (EngineState.RUNNING, EngineState.DEGRADED)


class MessagePriority(IntEnum):
    """Delivery priority; a subscriber always handles a more urgent message first."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4
    FLASH_CRASH = 5

    @property
    def lane(self) -> str:
        """The lower-case name used for per-priority queues and stream keys."""
        return self.name.lower()


class DataType(StrEnum):
    """A kind of market data the hub serves."""

    QUOTE = "quote"
    TRADE = "trade"
    BAR = "bar"
    LEVEL2 = "level2"
    FUNDAMENTAL = "fundamental"
    ECONOMIC = "economic"
    NEWS = "news"


class MessageType(StrEnum):
    """What a message means; consumers dispatch on it and payload schemas follow it."""

    # Market data (published by the MarketData Hub).
    QUOTE = "quote"
    TRADE = "trade"
    BAR = "bar"
    LEVEL2 = "level2"
    FUNDAMENTAL = "fundamental"
    ECONOMIC = "economic"
    NEWS = "news"
    # Trading flow.
    STRATEGY_SIGNAL = "strategy_signal"
    ORDER = "order"
    FILL = "fill"
    POSITION_CHANGE = "position_change"
    PORTFOLIO_BALANCE = "portfolio_balance"
    REBALANCE = "rebalance"
    # Risk and margin.
    RISK_ALERT = "risk_alert"
    RISK_LIMIT_BREACH = "risk_limit_breach"
    RISK_LIMITS = "risk_limits"
    MARGIN_STATUS = "margin_status"
    MARGIN_CALL = "margin_call"
    FLASH_CRASH_ALERT = "flash_crash_alert"
    # Models and analytics.
    ML_PREDICTION = "ml_prediction"
    TOXICITY_WARNING = "toxicity_warning"
    MARKET_STRUCTURE = "market_structure"
    PERFORMANCE_METRIC = "performance_metric"
    FACTOR_UPDATE = "factor_update"
    FEATURE_UPDATE = "feature_update"
    BACKTEST_PROGRESS = "backtest_progress"
    # Operations.
    ENGINE_HEALTH = "engine_health"
    REQUEST = "request"
    REPLY = "reply"
    ERROR = "error"
    # Anything else an engine publishes.
    EVENT = "event"
