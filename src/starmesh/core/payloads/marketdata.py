"""Market data: what the sources return, and the hub's snapshots, queries and replies."""

from __future__ import annotations

import msgspec

from starmesh.core.enums import DataType
from starmesh.core.payloads.base import Finite, NonNegative, Payload, PriceLevel, Side

__all__ = [
    "Bar",
    "BarSeries",
    "BookLevel2",
    "EconomicObservation",
    "EconomicSeries",
    "Fundamental",
    "MarketData",
    "MarketDataFailure",
    "MarketDataQuery",
    "MarketDataReply",
    "NewsFeed",
    "NewsItem",
    "Quote",
    "Snapshot",
    "Trade",
]


class Quote(Payload, tag="quote", frozen=True):
    """The best bid and ask of a symbol, with their sizes."""

    symbol: str
    bid: Finite
    ask: Finite
    bid_size: NonNegative
    ask_size: NonNegative

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> float:
        return self.ask - self.bid


class Trade(Payload, tag="trade", frozen=True):
    """One trade, or a last price: price and size (0 when the source does not say)."""

    symbol: str
    price: Finite
    size: NonNegative
    aggressor: Side | None = None
    """The side that crossed the spread, when the venue reports it."""
    trade_id: str | None = None


class Bar(Payload, tag="bar", frozen=True):
    """One OHLCV bar of a symbol: ``interval`` long from ``ts_start``."""

    symbol: str
    interval: str
    """Bar length as ``<n><unit>``: ``1m``, ``5m``, ``1h``, ``1d``."""
    ts_start: int
    """UNIX nanoseconds of the bar's open."""
    open: Finite
    high: Finite
    low: Finite
    close: Finite
    volume: NonNegative


class BarSeries(Payload, tag="bar_series", frozen=True):
    """Consecutive bars of one symbol, oldest first."""

    symbol: str
    interval: str
    bars: list[Bar]


class BookLevel2(Payload, tag="level2", frozen=True):
    """A symbol's order book by price level, best first on each side."""

    symbol: str
    bids: list[PriceLevel]
    """Best first: descending price."""
    asks: list[PriceLevel]
    """Best first: ascending price."""


class Fundamental(Payload, tag="fundamental", frozen=True):
    """A company's figures for one period (market cap, earnings, ...) by metric name."""

    symbol: str
    period: str
    """What the figures cover: ``TTM``, ``FY2025``, ``2026-Q3``."""
    metrics: dict[str, float]
    currency: str | None = None
    sector: str | None = None
    """The company's sector (GICS names), where the source says."""


class EconomicObservation(msgspec.Struct, frozen=True, gc=False):
    date: str
    """ISO date of the observation (``2026-10-01``)."""
    value: Finite | None
    """``None`` where the provider has no value for that date."""


class EconomicSeries(Payload, tag="economic", frozen=True):
    """An economic series: its dated observations, title, unit and frequency."""

    series_id: str
    title: str
    observations: list[EconomicObservation]
    unit: str | None = None
    frequency: str | None = None


class NewsItem(Payload, tag="news", frozen=True):
    """One headline (an article, a filing, a dataset) and when it was published."""

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

    ``seq`` counts the hub's distinct values of that (symbol, data type), in its ``epoch``: two
    engines that see the same ``(epoch, seq)`` see the same data, and a newer value has a
    larger ``(epoch, seq)``, also across a hub restart or a standby hub taking over. Under the
    hub lease (over Redis) the epoch is the lease's fencing token and ``seq`` goes on from the
    previous hub's; without it, the hub's start time in UNIX ns and ``seq`` starts at 1.
    ``stale`` marks a value served from cache because its source failed; ``age_s`` says how
    old it is.
    """

    symbol: str
    data_type: DataType
    seq: int
    ts_event: int
    source: str
    data: MarketData
    stale: bool = False
    age_s: float = 0.0
    epoch: int = 0
    """Of the hub that numbered ``seq``: its lease's token, or its start time (UNIX ns); 0
    from a hub that predates it."""


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
    """The hub's answer to an ``md_query``: a ``snapshot`` per pair it could serve,
    a failure per pair it could not."""

    snapshots: list[Snapshot]
    failures: list[MarketDataFailure] = msgspec.field(default_factory=list)
