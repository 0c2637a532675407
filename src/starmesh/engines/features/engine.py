"""The Features engine: per symbol, the features ML learns from, on time bars of the mid.

A bar closes when the first quote of a later bar arrives (bars follow the quotes' own time).
At each close it publishes ``features.update.<symbol>`` (to ML): log returns over 1, 5 and 20
bars, realised volatility over 20, RSI(14), the spread in basis points, the Level 2 book
imbalance over the best five levels, and the symbol's latest VPIN. A feature without enough
history yet is left out.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from starmesh.core.enums import DataType, EngineType
from starmesh.core.message import Message
from starmesh.core.payloads import BookLevel2, FeatureUpdate, MarketStructure, Quote, Snapshot
from starmesh.engines.base import Engine, EngineContext, MarketDataRoutes, Routes
from starmesh.engines.features.indicators import (
    Rsi,
    book_imbalance,
    log_return,
    realised_volatility,
    spread_bps,
)

__all__ = ["FEATURE_NAMES", "FeaturesConfig", "FeaturesEngine", "SymbolFeatures"]

FEATURE_NAMES = (
    "ret_1", "ret_5", "ret_20", "vol_20", "rsi_14", "spread_bps", "imbalance_5", "vpin",
)  # fmt: skip


class FeaturesConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bar_s: float = 0.5
    """Length of the bars the returns and RSI are taken on, in seconds of quote time (half a
    minute of the simulated market at its default speed: 20 bars make 10 seconds)."""
    book_levels: int = 5

    def __post_init__(self) -> None:
        if not (self.bar_s > 0 and self.book_levels > 0):
            raise ValueError("bar_s and book_levels must be positive")


class SymbolFeatures:
    """One symbol's bars and indicators."""

    def __init__(self, symbol: str, bar_ns: int, book_levels: int) -> None:
        self.symbol = symbol
        self.bar_ns = bar_ns
        self.book_levels = book_levels
        self.closes: deque[float] = deque(maxlen=21)
        self.rsi = Rsi(14)
        self._bar: int | None = None
        self._close = 0.0
        self.spread_bps: float | None = None
        self.imbalance: float | None = None
        self.vpin: float | None = None

    def quote(self, ts_ns: int, quote: Quote) -> dict[str, float] | None:
        """Take a quote; the features of the bar it closed, if it closed one."""
        self.spread_bps = spread_bps(quote.bid, quote.ask)
        bar = ts_ns // self.bar_ns
        closed = None
        if self._bar is not None and bar > self._bar:
            closed = self._close_bar()
        self._bar = bar
        self._close = quote.mid
        return closed

    def book(self, book: BookLevel2) -> None:
        self.imbalance = book_imbalance(book.bids, book.asks, self.book_levels)

    def _close_bar(self) -> dict[str, float]:
        self.closes.append(self._close)
        self.rsi.update(self._close)
        values: dict[str, float | None] = {
            "ret_1": log_return(self.closes, 1),
            "ret_5": log_return(self.closes, 5),
            "ret_20": log_return(self.closes, 20),
            "vol_20": realised_volatility(self.closes, 20),
            "rsi_14": self.rsi.value,
            "spread_bps": self.spread_bps,
            "imbalance_5": self.imbalance,
            "vpin": self.vpin,
        }
        return {name: value for name, value in values.items() if value is not None}


class FeaturesEngine(Engine):
    kind = EngineType.FEATURES

    def __init__(self, context: EngineContext, config: FeaturesConfig | None = None) -> None:
        super().__init__(context)
        self.config = config = config or FeaturesConfig()
        bar_ns = round(config.bar_s * 1e9)
        self.symbols_state = {
            s: SymbolFeatures(s, bar_ns, config.book_levels) for s in self.symbols
        }
        self.updates = 0

    def market_data(self) -> MarketDataRoutes:
        return {DataType.QUOTE: self.on_quote, DataType.LEVEL2: self.on_book}

    def routes(self) -> Routes:
        return {"vpin.market_structure.*": self.on_market_structure}

    def on_quote(self, snapshot: Snapshot) -> None:
        state = self.symbols_state.get(snapshot.symbol)
        if state is None or not isinstance(snapshot.data, Quote):
            return
        features = state.quote(snapshot.ts_event, snapshot.data)
        if features is not None:
            self.updates += 1
            # Posted: the next quote is not held behind this round trip to Redis.
            update = FeatureUpdate(symbol=snapshot.symbol, features=features)
            self.post(f"features.update.{snapshot.symbol}", update)

    def on_book(self, snapshot: Snapshot) -> None:
        state = self.symbols_state.get(snapshot.symbol)
        if state is not None and isinstance(snapshot.data, BookLevel2):
            state.book(snapshot.data)

    def on_market_structure(self, message: Message) -> None:
        structure = message.payload
        if isinstance(structure, MarketStructure) and structure.vpin is not None:
            state = self.symbols_state.get(structure.symbol)
            if state is not None:
                state.vpin = structure.vpin

    def health_detail(self) -> dict[str, Any]:
        return {"updates": self.updates}
