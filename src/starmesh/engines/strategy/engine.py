"""The Strategy engine: a moving-average crossover per symbol on the hub's quotes.

A cross proposes a new target position (long on a cross up, short or flat on a cross down);
it becomes a signal only when nothing stands in the way:

- a halting risk alert not yet cleared stops every new signal (the halt flag is kept here, so
  Strategy stays halted however long Risk is silent);
- a fresh VPIN toxicity warning on the symbol stands it aside;
- a fresh ML prediction on the symbol must agree with the cross with at least
  ``min_probability``.

Signals go to ``strategy.signals.<buy|sell>`` (HIGH) and the intended position to
``strategy.position.<symbol>`` (to Risk).

With a ledger the halt flag survives a restart: a checkpoint is taken at each halt and each
clearance. A restarted Strategy takes its halts from the checkpoint and from Risk's alert log,
the log deciding for every rule it holds (Risk resumes from the same log, so the two agree: a
halt the log has cleared is not waited on forever, one it has not cleared stands).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from starmesh.core.enums import DataType, EngineType, MessagePriority
from starmesh.core.message import Message
from starmesh.core.payloads import (
    FlashCrashAlert,
    PerformanceMetrics,
    PositionChange,
    Prediction,
    Quote,
    RiskAlert,
    Snapshot,
    ToxicityWarning,
    TradingSignal,
)
from starmesh.engines.base import Engine, EngineContext, MarketDataRoutes, Routes
from starmesh.engines.strategy.crossover import Cross, MovingAverageCrossover
from starmesh.storage import EngineLedger

__all__ = ["Halt", "HaltState", "StrategyConfig", "StrategyEngine", "StrategyState"]


_HALTS_SHOWN = 10
"""Halts whose latency the heartbeat carries, the latest."""


class StrategyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str = "ma_crossover"
    fast_window: int = 10
    """Quotes in the fast moving average."""
    slow_window: int = 30
    """Quotes in the slow moving average."""
    quantity: float = 100.0
    """Shares of the target position."""
    notional: float | None = None
    """When set, the target position is this much money instead (whole shares at the mid):
    for instruments whose prices differ by orders of magnitude, such as indices."""
    allow_short: bool = True
    """On a cross down, go short; otherwise go flat."""
    min_probability: float = 0.55
    """An ML prediction must give the cross's direction at least this probability."""
    prediction_ttl_s: float = 60.0
    toxicity_ttl_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.fast_window < self.slow_window:
            raise ValueError("need 0 < fast_window < slow_window")
        if not 0.5 <= self.min_probability < 1:
            raise ValueError("min_probability must be in [0.5, 1)")
        if not self.quantity > 0:
            raise ValueError("quantity must be positive")
        if self.notional is not None and not self.notional > 0:
            raise ValueError("notional must be positive when given")


@dataclass(slots=True)
class Halt:
    """A halting alert, from the moment it arrived to its clearance."""

    rule: str
    symbol: str | None
    message: str
    at_ns: int
    latency_ns: int | None
    """From the market-data tick that caused it to the halt, when the alert says."""
    signals_before: int
    """Signals sent before the halt (an index into ``StrategyEngine.signals``)."""
    cleared_ns: int | None = None
    signals_before_clearance: int | None = None


class HaltState(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    symbol: str | None
    message: str
    at_ns: int


class StrategyState(msgspec.Struct, frozen=True, kw_only=True):
    halts: dict[str, HaltState]
    """The halt flag: halting alerts not yet cleared, by ``rule:symbol``."""


class StrategyEngine(Engine):
    kind = EngineType.STRATEGY

    def __init__(self, context: EngineContext, config: StrategyConfig | None = None) -> None:
        super().__init__(context)
        self.config = config = config or StrategyConfig()
        self._crossovers = {
            s: MovingAverageCrossover(config.fast_window, config.slow_window) for s in self.symbols
        }
        self.intended: dict[str, float] = {}
        self.halts: dict[str, Halt] = {}
        """The halt flag: every halting alert not yet cleared, by rule and symbol."""
        self.halt_log: list[Halt] = []
        self._predictions: dict[str, tuple[float, int]] = {}
        self._toxic_until: dict[str, int] = {}
        self.performance: dict[str, PerformanceMetrics] = {}
        self.signals: list[tuple[int, str, Literal["BUY", "SELL"]]] = []
        """(clock ns, symbol, action) of every signal sent, in order."""
        self.counts = {
            "crosses": 0, "signals": 0, "halted": 0, "toxic": 0, "ml_disagreed": 0,
        }  # fmt: skip

    # --- declarations ------------------------------------------------------------------------

    def market_data(self) -> MarketDataRoutes:
        return {DataType.QUOTE: self.on_quote}

    def routes(self) -> Routes:
        return {
            "risk.alert.*": self.on_alert,
            "ml.prediction.*": self.on_prediction,
            "vpin.toxicity.*": self.on_toxicity,
            "analytics.performance.*": self.on_performance,
        }

    @property
    def halted(self) -> bool:
        return bool(self.halts)

    # --- state that survives -------------------------------------------------------------------

    async def restore(self, ledger: EngineLedger) -> dict[str, Any]:
        checkpoint = await ledger.last_checkpoint()
        halts: dict[str, HaltState] = {}
        if checkpoint is not None:
            halts = dict(msgspec.json.decode(checkpoint.state, type=StrategyState).halts)
        for record in await ledger.alerts():  # oldest first: the last word on each rule wins
            key = f"{record.rule}:{record.symbol or '*'}"
            if record.cleared:
                halts.pop(key, None)
            elif record.halt:
                halts[key] = HaltState(rule=record.rule, symbol=record.symbol,
                                       message=record.message, at_ns=record.ts_ns)  # fmt: skip
        for key, halt in halts.items():
            self.halts[key] = Halt(halt.rule, halt.symbol, halt.message, halt.at_ns, None, 0)
        return {
            "checkpoint": None if checkpoint is None else checkpoint.seq,
            "checkpoint_ts_ns": None if checkpoint is None else checkpoint.ts_ns,
            "halts": sorted(self.halts),
        }

    def checkpoint_state(self) -> StrategyState:
        return StrategyState(halts={
            key: HaltState(rule=h.rule, symbol=h.symbol, message=h.message, at_ns=h.at_ns)
            for key, h in self.halts.items()
        })  # fmt: skip

    # --- quotes -> signals ---------------------------------------------------------------------

    def on_quote(self, snapshot: Snapshot) -> None:
        quote = snapshot.data
        crossover = self._crossovers.get(snapshot.symbol)
        if crossover is None or not isinstance(quote, Quote):
            return
        cross = crossover.update(quote.mid)
        if cross is not None:
            self.counts["crosses"] += 1
            self._on_cross(quote.symbol, cross, quote.mid)

    def _on_cross(self, symbol: str, cross: Cross, mid: float) -> None:
        config = self.config
        size = config.quantity if config.notional is None else math.floor(config.notional / mid)
        target = size if cross > 0 else (-size if config.allow_short else 0.0)
        held = self.intended.get(symbol, 0.0)
        if target == held:
            return
        now = self.clock.now_ns()
        if self.halts:
            self.counts["halted"] += 1
            return
        if self._toxic_until.get(symbol, 0) > now:
            self.counts["toxic"] += 1
            return
        prediction = self._predictions.get(symbol)
        if prediction is not None and prediction[1] > now:
            probability = prediction[0] if cross > 0 else 1.0 - prediction[0]
            if probability < config.min_probability:
                self.counts["ml_disagreed"] += 1
                return
        action: Literal["BUY", "SELL"] = "BUY" if target > held else "SELL"
        signal = TradingSignal(
            symbol=symbol, action=action, quantity=abs(target - held), strategy=config.name,
            reason=f"fast MA crossed {'above' if cross > 0 else 'below'} slow MA",
            target=target, price=mid,
        )  # fmt: skip
        self.intended[symbol] = target
        self.counts["signals"] += 1
        self.signals.append((now, symbol, action))
        # Posted: the next quote is not held behind these round trips to Redis.
        self.post(f"strategy.signals.{action.lower()}", signal, MessagePriority.HIGH)
        self.post(
            f"strategy.position.{symbol}",
            PositionChange(symbol=symbol, quantity=target, delta=target - held, avg_price=mid),
        )

    # --- what others say -----------------------------------------------------------------------

    def on_alert(self, message: Message) -> None:
        alert = message.payload
        if not isinstance(alert, RiskAlert | FlashCrashAlert):
            return
        rule = alert.rule if isinstance(alert, RiskAlert) else "flash_crash"
        key = f"{rule}:{alert.symbol or '*'}"
        if alert.cleared:
            halt = self.halts.pop(key, None)
            if halt is not None:
                halt.cleared_ns = self.clock.now_ns()
                halt.signals_before_clearance = len(self.signals)
                self.save_checkpoint()
        elif alert.halt:
            now = self.clock.now_ns()
            trigger = alert.trigger_ts if isinstance(alert, FlashCrashAlert) else 0
            if key not in self.halts:
                latency = now - trigger if trigger else None
                self.halts[key] = Halt(
                    rule, alert.symbol, alert.message, now, latency, len(self.signals)
                )
                self.halt_log.append(self.halts[key])
                self.save_checkpoint()

    def on_prediction(self, message: Message) -> None:
        prediction = message.payload
        if isinstance(prediction, Prediction) and prediction.probability_up is not None:
            until = self.clock.now_ns() + round(self.config.prediction_ttl_s * 1e9)
            self._predictions[prediction.symbol] = (prediction.probability_up, until)

    def on_toxicity(self, message: Message) -> None:
        warning = message.payload
        if isinstance(warning, ToxicityWarning):
            until = self.clock.now_ns() + round(self.config.toxicity_ttl_s * 1e9)
            self._toxic_until[warning.symbol] = until

    def on_performance(self, message: Message) -> None:
        if isinstance(message.payload, PerformanceMetrics):
            self.performance[message.topic.rpartition(".")[2]] = message.payload

    def health_detail(self) -> dict[str, Any]:
        # How fast the last halts took hold, from the tick that caused each: the figure an
        # operator checks in a deployment, where no one process sees both ends.
        latencies = [round(h.latency_ns / 1e3, 1) for h in self.halt_log[-_HALTS_SHOWN:]
                     if h.latency_ns is not None]  # fmt: skip
        return {**self.counts, "halts": sorted(self.halts), "halt_latency_us": latencies}
