"""The Toraniko engine: factor returns of the market, sectors and styles, their covariance,
and each asset's residual return, with toraniko's estimator.

It takes the style exposures and sectors from the Factor engine (``factor.update.*``) and the
daily returns and market caps from the hub, estimates when new exposures have come in, and
publishes the latest date's returns and residuals on ``factor.model.returns`` and the
covariance on ``factor.model.covariance`` (to Factor, Risk and Analytics). It is
``degraded`` (warming_up) until its first estimate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import msgspec
import polars as pl

from starmesh.core.enums import EngineType
from starmesh.core.message import Message
from starmesh.core.payloads import FactorCovariance, FactorReturns, FactorUpdate
from starmesh.engines.base import Engine, EngineContext, Routes, Timers
from starmesh.engines.factor import STYLES, build_panel, fetch_history, sector_frame
from starmesh.engines.factor.history import Panel
from starmesh.engines.toraniko.estimation import FactorModel, estimate

__all__ = ["MODEL", "ToranikoConfig", "ToranikoEngine"]

MODEL = "toraniko"
WARMING_UP = "warming_up"


class ToranikoConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    history_days: int = 400
    estimate_interval_s: float = 2.0
    """How often to look for new exposures and estimate again."""
    history_refresh_s: float = 300.0
    """How often to ask the hub for the returns and market caps again."""
    winsor_factor: float | None = 0.05
    residualize_styles: bool = True
    min_dates: int = 20
    """Dates with complete exposures needed before estimating."""


class ToranikoEngine(Engine):
    kind = EngineType.TORANIKO

    def __init__(self, context: EngineContext, config: ToranikoConfig | None = None) -> None:
        super().__init__(context)
        self.config = config or ToranikoConfig()
        self._scores: dict[str, dict[str, dict[str, float]]] = {}
        """date -> symbol -> style -> score, as Factor published them."""
        self._sectors: dict[str, str] = {}
        self._panel: Panel | None = None
        self._panel_at = 0.0
        self._fresh = False
        self.model: FactorModel | None = None
        self.estimates = 0
        self.estimate_s: float | None = None

    def routes(self) -> Routes:
        return {"factor.update.*": self.on_exposures}

    def timers(self) -> Timers:
        return {"estimate": (self.config.estimate_interval_s, self.maybe_estimate)}

    async def on_start(self) -> None:
        await self.degrade(WARMING_UP, "waiting for style exposures and the hub's history")

    def on_exposures(self, message: Message) -> None:
        update = message.payload
        if not isinstance(update, FactorUpdate):
            return
        if update.model == "sectors":
            self._sectors = {s: next(iter(f)) for s, f in update.exposures.items() if f}
        else:
            by_symbol = self._scores.setdefault(update.as_of, {})
            for symbol, scores in update.exposures.items():
                by_symbol.setdefault(symbol, {}).update(scores)
        self._fresh = True

    async def maybe_estimate(self) -> None:
        """Estimate again if exposures came in since the last estimate."""
        if not self._fresh or not self._sectors:
            return
        now = self.clock.monotonic()
        if self._panel is None or now - self._panel_at >= self.config.history_refresh_s:
            history = await fetch_history(self.marketdata, self.symbols, self.config.history_days)
            self._panel, self._panel_at = build_panel(history.bars, history.fundamentals), now
        styles = self._style_frame()
        if styles["date"].n_unique() < self.config.min_dates:
            return
        self._fresh = False
        panel = self._panel
        sectors = sector_frame(styles["date"], self._sectors)
        started = time.perf_counter()  # a measurement of the machine, not a decision
        model = await asyncio.to_thread(
            estimate, panel.returns, panel.market_caps, sectors, styles,
            winsor_factor=self.config.winsor_factor,
            residualize_styles=self.config.residualize_styles,
        )  # fmt: skip
        self.estimate_s = time.perf_counter() - started
        if model.returns.is_empty():
            return
        self.model = model
        self.estimates += 1
        await self._publish(model)
        await self.recover(WARMING_UP)

    def _style_frame(self) -> pl.DataFrame:
        rows = [
            (dt.date.fromisoformat(date), symbol, *(scores[s] for s in STYLES))
            for date, by_symbol in sorted(self._scores.items())
            for symbol, scores in sorted(by_symbol.items())
            if symbol in self._sectors and all(s in scores for s in STYLES)
        ]
        schema = {"date": pl.Date, "symbol": pl.String, **dict.fromkeys(STYLES, pl.Float64)}
        return pl.DataFrame(rows, schema=schema, orient="row")

    async def _publish(self, model: FactorModel) -> None:
        last = model.returns.row(-1, named=True)
        as_of = last.pop("date").isoformat()
        residuals = model.residuals.row(-1, named=True)
        residuals.pop("date")
        await self.publish(
            "factor.model.returns",
            FactorReturns(model=MODEL, as_of=as_of, returns={k: float(v) for k, v in last.items()},
                          residuals={k: float(v) for k, v in residuals.items() if v is not None}),
        )  # fmt: skip
        await self.publish(
            "factor.model.covariance",
            FactorCovariance(model=MODEL, as_of=as_of, factors=model.factors,
                             matrix=model.covariance.tolist(),
                             observations=model.returns.height),
        )  # fmt: skip

    def health_detail(self) -> dict[str, Any]:
        return {
            "estimates": self.estimates,
            "dates": len(self._scores),
            "estimate_s": None if self.estimate_s is None else round(self.estimate_s, 3),
        }
