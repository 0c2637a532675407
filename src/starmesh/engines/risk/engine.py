"""The Risk engine: pre-trade checks, limits of the book, and the flash-crash detector.

It keeps its own view of the book (positions from Portfolio, marks from the hub's quotes,
equity from the balance updates) so it can answer a pre-trade check without asking anyone.

Alerts go out on ``risk.alert.<rule>`` at URGENT, a crash on ``risk.alert.flash_crash`` at
FLASH_CRASH; each with ``halt=True`` stops every strategy until the clearance of the same rule
and symbol, which is published at the alert's own priority so it can never overtake it.

With a ledger, every alert and clearance goes to its audit log, and a checkpoint is taken at
each change of alerts or limits: a restarted Risk resumes with its peak equity, the alerts in
force (still halting) and the tightenings of its limits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable
from typing import Any

import msgspec

from starmesh.core.enums import DataType, EngineType, MessagePriority
from starmesh.core.message import Message
from starmesh.core.payloads import (
    FactorCovariance,
    FlashCrashAlert,
    MarginCall,
    MarginStatus,
    MarketStructure,
    OrderCheck,
    OrderCheckResult,
    PortfolioBalance,
    PositionChange,
    Quote,
    RiskAlert,
    RiskLimits,
    Severity,
    Snapshot,
    ToxicityWarning,
)
from starmesh.engines.base import (
    Engine,
    EngineContext,
    MarketDataRoutes,
    Routes,
    Services,
    Timers,
)
from starmesh.engines.risk.flash_crash import Crash, FlashCrashDetector
from starmesh.engines.risk.limits import PreTradeCheck
from starmesh.engines.risk.measures import DrawdownTracker, expected_shortfall, historical_var
from starmesh.engines.risk.returns import ReturnHistory
from starmesh.engines.risk.state import RiskState, alert_record
from starmesh.storage import EngineLedger

__all__ = [
    "CHECK_TOPIC",
    "FLASH_CRASH_TOPIC",
    "LIMITS_REQUEST_TOPIC",
    "LIMITS_TOPIC",
    "RiskConfig",
    "RiskEngine",
]

CHECK_TOPIC = "risk.rpc.check"
LIMITS_REQUEST_TOPIC = "risk.rpc.limits"
LIMITS_TOPIC = "risk.limits.update"
FLASH_CRASH_TOPIC = "risk.alert.flash_crash"

logger = logging.getLogger(__name__)


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_position_notional: float = 50_000.0
    max_gross_notional: float = 500_000.0
    max_orders_per_second: float = 20.0
    gross_warning: float = 0.8
    """Warn when gross notional passes this fraction of its limit (cleared below 7/8 of it)."""
    max_drawdown: float = 0.05
    """A drawdown of equity from its peak beyond this halts trading (cleared at half of it)."""
    var_limit: float = 0.01
    """Largest VaR of the book per sample interval, as a fraction of equity."""
    var_confidence: float = 0.99
    es_confidence: float = 0.975
    sample_interval_s: float = 1.0
    """How often prices are sampled for the VaR history (seconds of the engine's clock)."""
    var_window: int = 250
    var_min_samples: int = 20
    flash_crash_drop: float = 0.03
    """A fall of more than this fraction ..."""
    flash_crash_window_s: float = 10.0
    """... within this many seconds of market-data time is a flash crash."""
    flash_crash_cooldown_s: float = 5.0
    """Seconds without a new crash of a symbol before its halt is cleared."""
    toxic_position_factor: float = 0.5
    """A symbol whose flow is toxic has its position limit multiplied by this."""
    toxic_for_s: float = 10.0
    margin_call_gross_factor: float = 0.5
    """While a margin call stands, the gross limit is multiplied by this."""

    def __post_init__(self) -> None:
        for name in ("flash_crash_drop", "max_drawdown", "var_limit", "gross_warning",
                     "toxic_position_factor", "margin_call_gross_factor"):  # fmt: skip
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} is a fraction between 0 and 1")
        if self.var_min_samples < 2 or self.var_min_samples > self.var_window:
            raise ValueError("need 2 <= var_min_samples <= var_window")

    def limits(self) -> RiskLimits:
        return RiskLimits(
            max_position_notional=self.max_position_notional,
            max_gross_notional=self.max_gross_notional,
            max_orders_per_second=self.max_orders_per_second,
        )


class RiskEngine(Engine):
    kind = EngineType.RISK

    def __init__(self, context: EngineContext, config: RiskConfig | None = None) -> None:
        super().__init__(context)
        self.config = config = config or RiskConfig()
        self.checks = PreTradeCheck(config.limits())
        self.detector = FlashCrashDetector(config.flash_crash_drop, config.flash_crash_window_s)
        self.returns = ReturnHistory(config.var_window)
        self.drawdown = DrawdownTracker()
        self.prices: dict[str, float] = {}
        self.book: dict[str, float] = {}
        """symbol -> signed quantity, as Portfolio last reported it."""
        self.intended: dict[str, float] = {}
        """symbol -> the position Strategy is aiming for."""
        self.equity: float | None = None
        self.vpin: dict[str, float] = {}
        self.active: dict[str, RiskAlert | FlashCrashAlert] = {}
        """Alerts not yet cleared, by ``rule:symbol``."""
        self._crashed_at: dict[str, int] = {}
        self._toxic_until: dict[str, int] = {}
        self._margin_call = False
        self.factor_covariance: FactorCovariance | None = None
        """The factor model's covariance, from Toraniko: the book's risk by factor."""
        self.var: float | None = None
        self.es: float | None = None
        self.counts = {"checks": 0, "refused": 0, "alerts": 0, "clearances": 0, "crashes": 0}

    # --- declarations ----------------------------------------------------------------------

    def market_data(self) -> MarketDataRoutes:
        return {DataType.QUOTE: self.on_quote}

    def routes(self) -> Routes:
        return {
            "strategy.position.*": self.on_intended_position,
            "portfolio.position.*": self.on_position,
            "portfolio.balance.*": self.on_balance,
            "collateral.margin.*": self.on_margin,
            "vpin.toxicity.*": self.on_toxicity,
            "vpin.market_structure.*": self.on_market_structure,
            "factor.model.*": self.on_factor_model,
        }

    def services(self) -> Services:
        return {CHECK_TOPIC: self.check, LIMITS_REQUEST_TOPIC: self.current_limits}

    def timers(self) -> Timers:
        return {"sample": (self.config.sample_interval_s, self.review)}

    def urgent_topics(self) -> tuple[str, ...]:
        return (FLASH_CRASH_TOPIC,)

    def market_data_at_once(self) -> bool:
        # The crash tick is the one quote that cannot wait behind the other engines' work;
        # ``on_quote`` costs a few microseconds, paid by the hub's publish.
        return True

    # --- state that survives -------------------------------------------------------------------

    async def restore(self, ledger: EngineLedger) -> dict[str, Any]:
        checkpoint = await ledger.last_checkpoint()
        if checkpoint is None:
            return {"checkpoint": None}
        state = msgspec.json.decode(checkpoint.state, type=RiskState)
        self.drawdown.peak = state.peak_equity
        self.active = dict(state.active)
        self._crashed_at = dict(state.crashed_at)
        self._toxic_until = dict(state.toxic_until)
        self._margin_call = state.margin_call
        # The configuration's limits, tightened as they were: a limit an operator changed
        # before the restart takes effect (the checkpoint's limits are a record, not a rule).
        self.checks.limits = msgspec.structs.replace(
            self.config.limits(),
            symbol_position_notional=self._symbol_limits(),
            max_gross_notional=self._gross_limit(),
            reason=f"resumed from checkpoint {checkpoint.seq}",
        )
        if msgspec.structs.replace(self.checks.limits, reason=state.limits.reason) != state.limits:
            logger.info("risk resumed with the configured limits, not the checkpoint's %s",
                        state.limits)  # fmt: skip
        return {"checkpoint": checkpoint.seq, "checkpoint_ts_ns": checkpoint.ts_ns,
                "active_alerts": sorted(self.active)}  # fmt: skip

    def checkpoint_state(self) -> RiskState:
        return RiskState(
            peak_equity=self.drawdown.peak, active=dict(self.active), limits=self.checks.limits,
            crashed_at=dict(self._crashed_at), toxic_until=dict(self._toxic_until),
            margin_call=self._margin_call,
        )  # fmt: skip

    async def _announce(
        self, topic: str, alert: RiskAlert | FlashCrashAlert, priority: MessagePriority
    ) -> None:
        """Publish an alert or clearance; with a ledger, into the audit log and a checkpoint."""
        message_id = await self.publish(topic, alert, priority)
        if self.ledger is not None:
            self.ledger.record(alert_record(alert, message_id=message_id,
                                            ts_ns=self.clock.now_ns()))  # fmt: skip
            self.save_checkpoint()

    # --- pre-trade ----------------------------------------------------------------------------

    def check(self, request: Message) -> OrderCheckResult:
        payload = request.payload
        order = payload if isinstance(payload, OrderCheck) else msgspec.convert(payload, OrderCheck)
        book = {**self.book, order.symbol: order.position}
        prices = {**self.prices, order.symbol: order.price}
        result = self.checks.check(order, book, prices, self.clock.now_ns())
        self.counts["checks"] += 1
        if not result.approved:
            self.counts["refused"] += 1
        return result

    def current_limits(self, request: Message) -> RiskLimits:
        return self.checks.limits

    # --- market data ------------------------------------------------------------------------

    def on_quote(self, snapshot: Snapshot) -> Awaitable[None] | None:
        # Plain, returning the alert's publish only on a crash: most quotes cost no coroutine.
        quote = snapshot.data
        if not isinstance(quote, Quote):
            return None
        mid = quote.mid
        self.prices[quote.symbol] = mid
        crash = self.detector.update(quote.symbol, snapshot.ts_event, mid)
        return None if crash is None else self._flash_crash(crash)

    async def _flash_crash(self, crash: Crash) -> None:
        self.counts["crashes"] += 1
        self._crashed_at[crash.symbol] = self.clock.now_ns()
        alert = FlashCrashAlert(
            symbol=crash.symbol,
            price_from=crash.price_from,
            price_to=crash.price_to,
            window_ms=crash.window_ns / 1e6,
            message=(
                f"{crash.symbol} fell {crash.drop:.1%} in {crash.window_ns / 1e9:.1f} s "
                f"({crash.price_from:.2f} -> {crash.price_to:.2f})"
            ),
            trigger_ts=crash.ts_to,
        )
        self.active[_key("flash_crash", crash.symbol)] = alert
        self.counts["alerts"] += 1
        await self._announce(FLASH_CRASH_TOPIC, alert, MessagePriority.FLASH_CRASH)

    # --- the book ---------------------------------------------------------------------------

    def on_intended_position(self, message: Message) -> None:
        change = message.payload
        if isinstance(change, PositionChange):
            self.intended[change.symbol] = change.quantity

    def on_position(self, message: Message) -> None:
        change = message.payload
        if isinstance(change, PositionChange):
            self.book[change.symbol] = change.quantity

    async def on_balance(self, message: Message) -> None:
        balance = message.payload
        if not isinstance(balance, PortfolioBalance):
            return
        self.equity = balance.equity
        self.book = dict(balance.positions)
        drawdown = self.drawdown.update(balance.equity)
        limit = self.config.max_drawdown
        await self._threshold(
            "drawdown", None, drawdown, limit, limit / 2, "critical", halt=True,
            text=f"drawdown {drawdown:.2%} of peak equity {self.drawdown.peak:,.0f}",
        )  # fmt: skip
        gross_limit = self.checks.limits.max_gross_notional
        warn_at = self.config.gross_warning * gross_limit
        await self._threshold(
            "gross_exposure", None, balance.gross_exposure, warn_at, warn_at * 7 / 8,
            "warning", halt=False,
            text=f"gross exposure {balance.gross_exposure:,.0f} of a {gross_limit:,.0f} limit",
        )  # fmt: skip

    # --- peers' warnings ----------------------------------------------------------------------

    async def on_margin(self, message: Message) -> None:
        payload = message.payload
        if isinstance(payload, MarginCall):
            halt = not payload.predicted
            if _key("margin_call", None) not in self.active:
                alert = RiskAlert(
                    rule="margin_call",
                    severity="critical" if halt else "warning",
                    message=payload.message,
                    value=payload.shortfall,
                    halt=halt,
                )
                await self._raise(alert)
            if halt and not self._margin_call:
                self._margin_call = True
                await self._tighten_for_margin()
        elif (
            isinstance(payload, MarginStatus)
            and payload.excess_liquidity >= 0
            and not payload.predicted_call
        ):
            await self._clear("margin_call", None, "margin back in order")
            if self._margin_call:
                self._margin_call = False
                await self._tighten_for_margin()

    async def on_toxicity(self, message: Message) -> None:
        warning = message.payload
        if not isinstance(warning, ToxicityWarning):
            return
        until = self.clock.now_ns() + round(self.config.toxic_for_s * 1e9)
        newly = warning.symbol not in self._toxic_until
        self._toxic_until[warning.symbol] = until
        if newly:
            await self._apply_symbol_limits(f"{warning.symbol} order flow toxic")

    def on_market_structure(self, message: Message) -> None:
        structure = message.payload
        if isinstance(structure, MarketStructure) and structure.vpin is not None:
            self.vpin[structure.symbol] = structure.vpin

    def on_factor_model(self, message: Message) -> None:
        if isinstance(message.payload, FactorCovariance):
            self.factor_covariance = message.payload

    # --- periodic review --------------------------------------------------------------------

    async def review(self) -> None:
        """Sample prices for VaR, check it, lift expired toxicity limits and cooled crashes."""
        now = self.clock.now_ns()
        self.returns.sample(self.prices)
        await self._check_var()
        expired = [s for s, until in self._toxic_until.items() if until <= now]
        for symbol in expired:
            del self._toxic_until[symbol]
        if expired:
            await self._apply_symbol_limits(f"{', '.join(expired)} order flow no longer toxic")
        cooldown = round(self.config.flash_crash_cooldown_s * 1e9)
        for symbol, at in list(self._crashed_at.items()):
            if now - at >= cooldown:
                del self._crashed_at[symbol]
                self.detector.forget(symbol)
                await self._clear("flash_crash", symbol, f"{symbol} calm for {cooldown / 1e9:g} s")

    async def _check_var(self) -> None:
        if self.equity is None or self.equity <= 0:
            return
        exposures = {s: q * self.prices[s] for s, q in self.book.items() if s in self.prices}
        held = [s for s, value in exposures.items() if value != 0]
        if self.returns.depth(held) < self.config.var_min_samples:
            return
        scenarios = self.returns.book_returns(exposures, self.equity)
        if scenarios.size == 0:
            return
        self.var = historical_var(scenarios, self.config.var_confidence)
        self.es = expected_shortfall(scenarios, self.config.es_confidence)
        limit = self.config.var_limit
        await self._threshold(
            "var", None, self.var, limit, limit * 0.8, "warning", halt=False,
            text=f"VaR {self.config.var_confidence:.0%} {self.var:.3%} of equity "
            f"(ES {self.es:.3%}) over the {limit:.2%} limit",
        )  # fmt: skip

    # --- alerts and limits ------------------------------------------------------------------

    async def _threshold(
        self,
        rule: str,
        symbol: str | None,
        value: float,
        limit: float,
        clear_below: float,
        severity: Severity,
        *,
        halt: bool,
        text: str,
    ) -> None:
        """Raise ``rule`` when ``value`` passes ``limit``; clear it below ``clear_below``."""
        key = _key(rule, symbol)
        if value > limit and key not in self.active:
            alert = RiskAlert(rule=rule, severity=severity, message=text, symbol=symbol,
                              value=value, limit=limit, halt=halt)  # fmt: skip
            await self._raise(alert)
        elif value < clear_below and key in self.active:
            await self._clear(rule, symbol, text)

    async def _raise(self, alert: RiskAlert) -> None:
        self.active[_key(alert.rule, alert.symbol)] = alert
        self.counts["alerts"] += 1
        await self._announce(f"risk.alert.{alert.rule}", alert, MessagePriority.URGENT)

    async def _clear(self, rule: str, symbol: str | None, text: str) -> None:
        alert = self.active.pop(_key(rule, symbol), None)
        if alert is None:
            return
        self.counts["clearances"] += 1
        if isinstance(alert, FlashCrashAlert):
            cleared: RiskAlert | FlashCrashAlert = msgspec.structs.replace(
                alert, halt=False, cleared=True, message=f"cleared: {text}"
            )
            priority = MessagePriority.FLASH_CRASH
        else:
            cleared = RiskAlert(rule=rule, severity="info", message=f"cleared: {text}",
                                symbol=symbol, cleared=True)  # fmt: skip
            priority = MessagePriority.URGENT
        await self._announce(f"risk.alert.{rule}", cleared, priority)

    def _symbol_limits(self) -> dict[str, float]:
        """Position limits of the symbols whose flow is toxic."""
        factor = self.config.toxic_position_factor
        return dict.fromkeys(sorted(self._toxic_until), self.config.max_position_notional * factor)

    def _gross_limit(self) -> float:
        factor = self.config.margin_call_gross_factor if self._margin_call else 1.0
        return self.config.max_gross_notional * factor

    async def _apply_symbol_limits(self, reason: str) -> None:
        self.checks.limits = msgspec.structs.replace(
            self.checks.limits, symbol_position_notional=self._symbol_limits(), reason=reason
        )
        await self._publish_limits(reason)

    async def _tighten_for_margin(self) -> None:
        reason = "margin call: gross limit tightened" if self._margin_call else "margin restored"
        self.checks.limits = msgspec.structs.replace(
            self.checks.limits, max_gross_notional=self._gross_limit(), reason=reason
        )
        await self._publish_limits(reason)

    async def _publish_limits(self, reason: str) -> None:
        limits = msgspec.structs.replace(self.checks.limits, reason=reason)
        await self.publish(LIMITS_TOPIC, limits, MessagePriority.HIGH)
        self.save_checkpoint()

    def health_detail(self) -> dict[str, Any]:
        return {
            **self.counts,
            "active_alerts": sorted(self.active),
            "var": self.var,
            "es": self.es,
            "toxic": sorted(self._toxic_until),
            "market_factor_vol": self._market_factor_vol(),
            "intended_gross": round(
                sum(abs(q) * self.prices.get(s, 0.0) for s, q in self.intended.items()), 2
            ),
        }

    def _market_factor_vol(self) -> float | None:
        """The daily volatility of the factor model's market factor, once it is known."""
        covariance = self.factor_covariance
        if covariance is None or "market" not in covariance.factors:
            return None
        index = covariance.factors.index("market")
        return round(math.sqrt(max(covariance.matrix[index][index], 0.0)), 6)


def _key(rule: str, symbol: str | None) -> str:
    return f"{rule}:{symbol or '*'}"
