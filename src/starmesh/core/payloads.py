"""Typed payloads: the schemas of market data and of the business messages engines exchange.

Every payload is a frozen msgspec Struct tagged in the field ``_type`` (``{"_type": "quote",
...}`` on the wire), so a receiver decodes it back into the same class and a client in
another language can send one by setting ``_type``. A plain ``dict`` payload is also allowed;
it travels as an untagged map.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from starmesh.core.enums import DataType, MessageType

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
    "FactorUpdate",
    "FeatureUpdate",
    "Fill",
    "FlashCrashAlert",
    "Fundamental",
    "HealthStatus",
    "MarginCall",
    "MarginStatus",
    "MarketData",
    "MarketDataFailure",
    "MarketDataQuery",
    "MarketDataReply",
    "NewsFeed",
    "NewsItem",
    "Order",
    "Payload",
    "PerformanceMetrics",
    "PositionChange",
    "Prediction",
    "PriceLevel",
    "Quote",
    "RiskAlert",
    "RiskLimitBreach",
    "Severity",
    "Side",
    "Snapshot",
    "ToxicityWarning",
    "Trade",
    "TradingSignal",
]

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Side = Literal["BUY", "SELL"]
Severity = Literal["info", "warning", "critical"]
PriceLevel = tuple[float, float]
"""One level of a book: (price, size)."""


class Payload(msgspec.Struct, frozen=True, kw_only=True, tag_field="_type", gc=False):
    """Base class of every typed payload. Subclasses set ``tag=`` to their wire name."""


# --- market data ---------------------------------------------------------------------------


class Quote(Payload, tag="quote", frozen=True):
    symbol: str
    bid: float
    ask: float
    bid_size: NonNegative
    ask_size: NonNegative

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> float:
        return self.ask - self.bid


class Trade(Payload, tag="trade", frozen=True):
    symbol: str
    price: float
    size: NonNegative
    aggressor: Side | None = None
    """The side that crossed the spread, when the venue reports it."""
    trade_id: str | None = None


class Bar(Payload, tag="bar", frozen=True):
    symbol: str
    interval: str
    """Bar length as ``<n><unit>``: ``1m``, ``5m``, ``1h``, ``1d``."""
    ts_start: int
    """UNIX nanoseconds of the bar's open."""
    open: float
    high: float
    low: float
    close: float
    volume: NonNegative


class BarSeries(Payload, tag="bar_series", frozen=True):
    """Consecutive bars of one symbol, oldest first."""

    symbol: str
    interval: str
    bars: list[Bar]


class BookLevel2(Payload, tag="level2", frozen=True):
    symbol: str
    bids: list[PriceLevel]
    """Best first: descending price."""
    asks: list[PriceLevel]
    """Best first: ascending price."""


class Fundamental(Payload, tag="fundamental", frozen=True):
    symbol: str
    period: str
    """What the figures cover: ``TTM``, ``FY2025``, ``2026-Q3``."""
    metrics: dict[str, float]
    currency: str | None = None


class EconomicObservation(msgspec.Struct, frozen=True, gc=False):
    date: str
    """ISO date of the observation (``2026-10-01``)."""
    value: float | None
    """``None`` where the provider has no value for that date."""


class EconomicSeries(Payload, tag="economic", frozen=True):
    series_id: str
    title: str
    observations: list[EconomicObservation]
    unit: str | None = None
    frequency: str | None = None


class NewsItem(Payload, tag="news", frozen=True):
    headline: str
    published_ns: int
    symbols: list[str] = msgspec.field(default_factory=list)
    url: str | None = None
    summary: str | None = None


class NewsFeed(Payload, tag="news_feed", frozen=True):
    """Recent news about one symbol, newest first."""

    symbol: str
    items: list[NewsItem]


MarketData = Quote | Trade | Bar | BarSeries | BookLevel2 | Fundamental | EconomicSeries | NewsFeed
"""What a market-data source returns and a snapshot carries."""


class Snapshot(Payload, tag="snapshot", frozen=True):
    """One value of one (symbol, data type), as the hub distributes it.

    ``seq`` counts the hub's distinct values of that (symbol, data type): two engines that see
    the same ``seq`` see the same data. ``stale`` marks a value served from cache because its
    source failed; ``age_s`` says how old it is.
    """

    symbol: str
    data_type: DataType
    seq: int
    ts_event: int
    source: str
    data: MarketData
    stale: bool = False
    age_s: float = 0.0


class MarketDataQuery(Payload, tag="md_query", frozen=True):
    """A request to the hub: every (symbol, data type) pair of the lists."""

    symbols: list[str]
    data_types: list[DataType]
    source: str | None = None
    """A source by name; None lets the hub choose the first configured one that serves it."""
    params: dict[str, str] = msgspec.field(default_factory=dict)
    """Source parameters, e.g. ``{"interval": "1d", "lookback": "100"}`` for bars."""


class MarketDataFailure(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    data_type: DataType
    code: str
    """A :class:`~starmesh.core.errors.MarketDataError` code."""
    message: str


class MarketDataReply(Payload, tag="md_reply", frozen=True):
    snapshots: list[Snapshot]
    failures: list[MarketDataFailure] = msgspec.field(default_factory=list)


# --- trading flow ----------------------------------------------------------------------------


class TradingSignal(Payload, tag="trading_signal", frozen=True):
    symbol: str
    action: Literal["BUY", "SELL", "HOLD"]
    quantity: NonNegative
    strength: Fraction = 1.0
    """Conviction of the signal, 0 to 1."""
    strategy: str = ""
    reason: str = ""


class Order(Payload, tag="order", frozen=True):
    order_id: str
    symbol: str
    side: Side
    quantity: Annotated[float, msgspec.Meta(gt=0)]
    order_type: Literal["market", "limit", "stop"] = "market"
    limit_price: float | None = None
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "day"


class Fill(Payload, tag="fill", frozen=True):
    order_id: str
    symbol: str
    side: Side
    quantity: Annotated[float, msgspec.Meta(gt=0)]
    price: float
    fee: NonNegative = 0.0


class PositionChange(Payload, tag="position_change", frozen=True):
    symbol: str
    quantity: float
    """The position after the change (negative = short)."""
    delta: float
    avg_price: float


# --- risk and margin -------------------------------------------------------------------------


class RiskAlert(Payload, tag="risk_alert", frozen=True):
    rule: str
    severity: Severity
    message: str
    symbol: str | None = None
    value: float | None = None
    limit: float | None = None


class RiskLimitBreach(Payload, tag="risk_limit_breach", frozen=True):
    limit_name: str
    value: float
    limit: float
    action: Literal["warn", "reduce", "halt"]
    symbol: str | None = None


class MarginStatus(Payload, tag="margin_status", frozen=True):
    account: str
    equity: float
    margin_used: NonNegative
    margin_available: float
    utilization: NonNegative
    """margin_used / equity; above 1 means the account is under water."""


class MarginCall(Payload, tag="margin_call", frozen=True):
    account: str
    shortfall: NonNegative
    message: str
    deadline_ns: int | None = None


class FlashCrashAlert(Payload, tag="flash_crash_alert", frozen=True):
    symbol: str
    price_from: float
    price_to: float
    window_ms: NonNegative
    message: str

    @property
    def drop_pct(self) -> float:
        return (self.price_from - self.price_to) / self.price_from * 100 if self.price_from else 0.0


# --- models and analytics --------------------------------------------------------------------


class Prediction(Payload, tag="prediction", frozen=True):
    model: str
    symbol: str
    horizon: str
    """How far ahead the prediction looks: ``1m``, ``1d``."""
    value: float
    confidence: Fraction


class ToxicityWarning(Payload, tag="toxicity_warning", frozen=True):
    symbol: str
    vpin: Fraction
    threshold: Fraction
    severity: Severity


class PerformanceMetrics(Payload, tag="performance_metrics", frozen=True):
    portfolio: str
    window: str
    pnl: float
    return_pct: float
    volatility: NonNegative
    sharpe: float | None = None
    max_drawdown: NonNegative = 0.0


class FactorUpdate(Payload, tag="factor_update", frozen=True):
    model: str
    as_of: str
    """ISO date the factor returns are for."""
    factor_returns: dict[str, float]
    exposures: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    """symbol -> factor -> exposure; may be empty when only returns are sent."""


class FeatureUpdate(Payload, tag="feature_update", frozen=True):
    symbol: str
    features: dict[str, float]


class BacktestProgress(Payload, tag="backtest_progress", frozen=True):
    run_id: str
    fraction_done: Fraction
    message: str = ""
    metrics: dict[str, float] = msgspec.field(default_factory=dict)


# --- operations ------------------------------------------------------------------------------


class HealthStatus(Payload, tag="health_status", frozen=True):
    engine: str
    instance: str
    status: Literal["starting", "healthy", "degraded", "stopping"]
    uptime_s: NonNegative
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorInfo(Payload, tag="error", frozen=True):
    """The payload of an ERROR reply: why a request could not be answered."""

    code: str
    message: str


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
    RiskAlert: MessageType.RISK_ALERT,
    RiskLimitBreach: MessageType.RISK_LIMIT_BREACH,
    MarginStatus: MessageType.MARGIN_STATUS,
    MarginCall: MessageType.MARGIN_CALL,
    FlashCrashAlert: MessageType.FLASH_CRASH_ALERT,
    Prediction: MessageType.ML_PREDICTION,
    ToxicityWarning: MessageType.TOXICITY_WARNING,
    PerformanceMetrics: MessageType.PERFORMANCE_METRIC,
    FactorUpdate: MessageType.FACTOR_UPDATE,
    FeatureUpdate: MessageType.FEATURE_UPDATE,
    BacktestProgress: MessageType.BACKTEST_PROGRESS,
    HealthStatus: MessageType.ENGINE_HEALTH,
    ErrorInfo: MessageType.ERROR,
}
"""The message type a typed payload implies when a publisher does not name one."""

PAYLOAD_TYPES: tuple[type[Payload], ...] = tuple(PAYLOAD_MESSAGE_TYPES)
"""Every typed payload class; the codec decodes any of them by its ``_type`` tag."""
