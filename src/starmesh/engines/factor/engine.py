"""The Factor engine: style exposures of the universe (momentum, size, value, sector), from
the daily bars and fundamentals the hub serves.

At start, and every ``refresh_s`` after, it asks the hub for the history, computes the
exposures with toraniko off the event loop, and publishes each style's cross-section for each
of the last ``publish_days`` dates on ``factor.update.<style>`` (to Analytics and Toraniko),
the sectors on ``factor.update.sector``. It is ``degraded`` (warming_up) until the first
exposures are out. It follows the factor model's returns from Toraniko.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import polars as pl

from starmesh.core.enums import EngineType
from starmesh.core.message import Message
from starmesh.core.payloads import FactorReturns, FactorUpdate
from starmesh.engines.base import Engine, EngineContext, Routes, Timers
from starmesh.engines.factor.history import build_panel, fetch_history
from starmesh.engines.factor.styles import STYLES, style_exposures

__all__ = ["FactorConfig", "FactorEngine"]

logger = logging.getLogger(__name__)

WARMING_UP = "warming_up"


class FactorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    history_days: int = 400
    """Daily bars asked of the hub per symbol."""
    momentum_days: int = 252
    momentum_half_life: int = 63
    momentum_lag: int = 20
    publish_days: int = 120
    """The most recent dates whose exposures are published (the factor model's window)."""
    refresh_s: float = 60.0

    def __post_init__(self) -> None:
        if self.history_days <= self.momentum_days + self.momentum_lag:
            raise ValueError("history_days must exceed momentum_days + momentum_lag")
        if not (self.publish_days > 0 and self.refresh_s > 0):
            raise ValueError("publish_days and refresh_s must be positive")


class FactorEngine(Engine):
    kind = EngineType.FACTOR

    def __init__(self, context: EngineContext, config: FactorConfig | None = None) -> None:
        super().__init__(context)
        self.config = config or FactorConfig()
        self.exposures: pl.DataFrame | None = None
        self.sectors: dict[str, str] = {}
        self.factor_returns: FactorReturns | None = None
        self.refreshes = 0
        self._refreshing: asyncio.Task[None] | None = None
        self._busy = False

    def routes(self) -> Routes:
        return {"factor.model.*": self.on_model}

    def timers(self) -> Timers:
        return {"refresh": (self.config.refresh_s, self.refresh)}

    async def on_start(self) -> None:
        await self.degrade(WARMING_UP, "computing style exposures from the hub's history")
        # In the background: the history takes a while, and start() must not wait for it.
        self._refreshing = asyncio.create_task(self.refresh(), name="factor:warm-up")

    async def ready(self) -> None:
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)

    async def on_stop(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()

    def on_model(self, message: Message) -> None:
        if isinstance(message.payload, FactorReturns):
            self.factor_returns = message.payload

    async def refresh(self) -> None:
        if self._busy:
            return  # the last refresh is still under way
        self._busy = True
        try:
            await self._refresh()
        finally:
            self._busy = False

    async def _refresh(self) -> None:
        config = self.config
        history = await fetch_history(self.marketdata, self.symbols, config.history_days)
        if not history.bars:
            await self.degrade(WARMING_UP, f"the hub has no daily history for {history.missing}")
            return
        panel = build_panel(history.bars, history.fundamentals)
        exposures = await asyncio.to_thread(
            style_exposures, panel, momentum_days=config.momentum_days,
            momentum_half_life=config.momentum_half_life, momentum_lag=config.momentum_lag,
        )  # fmt: skip
        if exposures.is_empty():
            await self.degrade(WARMING_UP, "not enough history for every style yet")
            return
        self.exposures, self.sectors = exposures, panel.sectors
        await self._publish(exposures)
        self.refreshes += 1
        await self.recover(WARMING_UP)

    async def _publish(self, exposures: pl.DataFrame) -> None:
        dates = exposures["date"].unique().sort()[-self.config.publish_days :]
        recent = exposures.filter(pl.col("date").is_in(dates.implode()))
        latest = dates[-1].isoformat()
        sector_update = FactorUpdate(
            model="sectors", as_of=latest, factor_returns={},
            exposures={s: {sector: 1.0} for s, sector in sorted(self.sectors.items())},
        )  # fmt: skip
        await self.publish("factor.update.sector", sector_update)
        for (date,), frame in recent.group_by("date", maintain_order=True):
            for style in STYLES:
                update = FactorUpdate(
                    model="styles", as_of=date.isoformat(), factor_returns={},
                    exposures={
                        symbol: {style: score}
                        for symbol, score in frame.select("symbol", style).iter_rows()
                    },
                )  # fmt: skip
                await self.publish(f"factor.update.{style.removesuffix('_score')}", update)
                # A turn for the loop between messages: built in one go, the 361 of a refresh
                # each waited for the whole burst (factor routes' p50 was 77 ms) and every
                # other engine waited with them.
                await asyncio.sleep(0)

    def health_detail(self) -> dict[str, Any]:
        exposures = self.exposures
        return {
            "refreshes": self.refreshes,
            "dates": 0 if exposures is None else exposures["date"].n_unique(),
            "symbols": len(self.sectors),
        }
