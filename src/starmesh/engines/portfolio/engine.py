"""The Portfolio engine: executes signals and rebalances against the paper broker, and keeps
the book (positions, cash, average cost, realised and unrealised P&L marked to mid).

Before each order it asks Risk (``risk.rpc.check``, HIGH priority, a short deadline). When
Risk does not answer it decides with its own copy of the limits (kept current from
``risk.limits.*``) and says so in its health (``degraded``: risk_silent) until Risk answers
again. Orders fill at the hub's current ask (buy) or bid (sell): the same snapshot every
engine sees.

With a ledger, every fill, the signal that led to it and an equity snapshot a balance
interval go to the ledger without waiting for it; a restart rebuilds the book from the fills
(see :mod:`starmesh.engines.portfolio.state`). While the ledger's queue is full no new order
is placed (``degraded``: ledger_backlog): a trade that cannot be recorded is not made.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec

from starmesh.core.enums import DataType, EngineType, MessagePriority
from starmesh.core.errors import MarketDataError, MessageBusError
from starmesh.core.message import Message
from starmesh.core.payloads import (
    Fill,
    OrderCheck,
    OrderCheckResult,
    PerformanceMetrics,
    PortfolioBalance,
    PositionChange,
    Quote,
    Rebalance,
    RiskLimits,
    Side,
    Snapshot,
    TradingSignal,
)
from starmesh.engines.base import (
    Engine,
    EngineContext,
    MarketDataRoutes,
    Routes,
    Services,
    Timers,
)
from starmesh.engines.portfolio.broker import CommissionSchedule, PaperBroker
from starmesh.engines.portfolio.state import (
    PortfolioState,
    equity_record,
    fill_record,
    order_number,
    rebuild,
    signal_record,
    state_of,
)
from starmesh.engines.risk.engine import CHECK_TOPIC, LIMITS_REQUEST_TOPIC, RiskConfig
from starmesh.engines.risk.limits import PreTradeCheck
from starmesh.storage import EngineLedger, EquityRecord, InvalidRecordError

__all__ = ["BALANCE_TOPIC", "POSITIONS_TOPIC", "PortfolioConfig", "PortfolioEngine"]

logger = logging.getLogger(__name__)

BALANCE_TOPIC = "portfolio.balance.update"
POSITIONS_TOPIC = "portfolio.rpc.positions"
_RISK_SILENT = "risk_silent"
_LEDGER_BACKLOG = "ledger_backlog"


class PortfolioConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    starting_cash: float = 1_000_000.0
    commission_per_share: float = 0.005
    commission_minimum: float = 1.0
    commission_max_fraction: float = 0.01
    slippage_bps: float = 0.0
    risk_check_timeout_s: float = 0.25
    """How long an order waits for Risk's answer before the local limits decide."""
    balance_interval_s: float = 1.0
    lot_size: float = 1.0
    """Rebalances trade whole lots of this many shares."""
    limits: RiskLimits = msgspec.field(default_factory=lambda: RiskConfig().limits())
    """The local copy of Risk's limits until Risk publishes its own."""

    def __post_init__(self) -> None:
        if not (self.starting_cash > 0 and self.risk_check_timeout_s > 0 and self.lot_size > 0):
            raise ValueError("starting_cash, risk_check_timeout_s and lot_size must be positive")


class PortfolioEngine(Engine):
    kind = EngineType.PORTFOLIO

    def __init__(self, context: EngineContext, config: PortfolioConfig | None = None) -> None:
        super().__init__(context)
        self.config = config = config or PortfolioConfig()
        self.broker = self._new_broker(config.starting_cash)
        self.local_check = PreTradeCheck(config.limits)
        self.marks: dict[str, float] = {}
        self.performance: dict[str, PerformanceMetrics] = {}
        self.fill_log: list[tuple[int, Fill]] = []
        """(clock ns, fill) of every fill, in order."""
        self._orders = 0
        self.counts = {"orders": 0, "fills": 0, "refused": 0, "risk_fallbacks": 0, "rejected": 0,
                       "signals_redelivered": 0}  # fmt: skip
        if self.ledger is not None:
            self.counts["ledger_full"] = 0
        self._traded_signals: set[str] = set()
        """Ids of the signals that led to fills, the ledger's included: a signal the bus
        redelivers after a crash (handled, not yet acknowledged) must not trade again."""
        self._unrecorded_equity: EquityRecord | None = None

    def _new_broker(self, cash: float) -> PaperBroker:
        config = self.config
        return PaperBroker(
            cash,
            commission=CommissionSchedule(
                config.commission_per_share,
                config.commission_minimum,
                config.commission_max_fraction,
            ),
            slippage_bps=config.slippage_bps,
        )

    # --- declarations ----------------------------------------------------------------------

    def market_data(self) -> MarketDataRoutes:
        return {DataType.QUOTE: self.on_quote}

    def routes(self) -> Routes:
        return {
            "strategy.signals.*": self.on_signal,
            "portfolio.rebalance.*": self.on_rebalance,
            "risk.limits.*": self.on_limits,
            "analytics.performance.*": self.on_performance,
        }

    def services(self) -> Services:
        return {POSITIONS_TOPIC: self.positions}

    def timers(self) -> Timers:
        return {"balance": (self.config.balance_interval_s, self._balance_tick)}

    # --- state that survives -------------------------------------------------------------------

    async def restore(self, ledger: EngineLedger) -> dict[str, Any]:
        """The book rebuilt from the ledger's fills, checked against the last checkpoint."""
        fills = await ledger.fills()
        checkpoint = await ledger.last_checkpoint()
        cash = self.config.starting_cash
        if checkpoint is not None:
            cash = msgspec.json.decode(checkpoint.state, type=PortfolioState).starting_cash
            if cash != self.config.starting_cash:
                logger.warning("the ledger's account started with %s, not the configured %s; "
                               "the ledger stands", cash, self.config.starting_cash)  # fmt: skip
        broker = self._new_broker(cash)
        state = rebuild(broker, fills, checkpoint)
        self.broker = broker
        self._orders = max([state.orders if state else 0,
                            *(order_number(f.order_id) for f in fills)])  # fmt: skip
        self._traded_signals = {f.signal_id for f in fills if f.signal_id is not None}
        if checkpoint is None or state is None:
            return {"checkpoint": None, "fills": len(fills)}
        return {
            "checkpoint": checkpoint.seq,
            "checkpoint_ts_ns": checkpoint.ts_ns,
            "fills": len(fills),
            "fills_after_checkpoint": len(fills) - state.fills,
        }

    async def stop(self) -> None:
        await super().stop()
        self._note_equity(None)  # the last instant's balance, now that nothing can change it

    def checkpoint_state(self) -> PortfolioState:
        return state_of(self.broker, self._orders)

    async def _balance_tick(self) -> None:
        await self.publish_balance()
        if self.ledger is not None and self.ledger.has_room():
            await self.recover(_LEDGER_BACKLOG)

    async def on_start(self) -> None:
        """Take Risk's current limits; if Risk is not up yet, the configured copy stands."""
        try:
            reply = await self.bus.request(
                LIMITS_REQUEST_TOPIC, timeout=self.config.risk_check_timeout_s
            )
        except MessageBusError as exc:
            logger.info("risk limits not available at start (%s); using the configured copy", exc)
            return
        if isinstance(reply.payload, RiskLimits):
            self.local_check.limits = reply.payload

    # --- handlers ------------------------------------------------------------------------------

    def on_quote(self, snapshot: Snapshot) -> None:
        if isinstance(snapshot.data, Quote):
            self.marks[snapshot.symbol] = snapshot.data.mid

    async def on_signal(self, message: Message) -> None:
        signal = message.payload
        if not isinstance(signal, TradingSignal) or signal.action == "HOLD":
            return
        if message.id in self._traded_signals:
            self.counts["signals_redelivered"] += 1
            logger.warning("signal %s traded before the restart: not again", message.id)
            return
        held = self.broker.position(signal.symbol)
        if signal.target is not None:
            delta = signal.target - held
        else:
            delta = signal.quantity if signal.action == "BUY" else -signal.quantity
        if delta != 0 and self.ledger is not None:
            self.ledger.record(signal_record(signal, message_id=message.id,
                                             account=self.context.account,
                                             ts_ns=self.clock.now_ns()))  # fmt: skip
        await self.trade(signal.symbol, delta, reason=f"signal {message.id}", signal_id=message.id)

    async def on_rebalance(self, message: Message) -> None:
        rebalance = message.payload
        if not isinstance(rebalance, Rebalance):
            rebalance = msgspec.convert(rebalance, Rebalance)
        equity = self.broker.equity(self._marks_for_book())
        lot = self.config.lot_size
        for symbol, weight in rebalance.weights.items():
            quote = await self._quote(symbol)
            if quote is None:
                continue
            target = math.floor(abs(weight) * equity / quote.mid / lot) * lot
            target = target if weight >= 0 else -target
            await self.trade(symbol, target - self.broker.position(symbol), reason="rebalance")

    def on_limits(self, message: Message) -> None:
        if isinstance(message.payload, RiskLimits):
            self.local_check.limits = message.payload

    def on_performance(self, message: Message) -> None:
        if isinstance(message.payload, PerformanceMetrics):
            self.performance[message.topic.rpartition(".")[2]] = message.payload

    def positions(self, request: Message) -> PortfolioBalance:
        return self.balance()

    # --- orders ----------------------------------------------------------------------------

    async def trade(
        self, symbol: str, delta: float, *, reason: str, signal_id: str | None = None
    ) -> bool:
        """Buy (``delta > 0``) or sell ``|delta|`` shares of ``symbol`` at market, if Risk (or,
        Risk silent, the local limits) allows. True if it filled.
        """
        if delta == 0:
            return False
        side: Side = "BUY" if delta > 0 else "SELL"
        quantity = abs(delta)
        quote = await self._quote(symbol)
        if quote is None:
            self.counts["rejected"] += 1
            return False
        self._orders += 1
        self.counts["orders"] += 1
        order = OrderCheck(
            order_id=f"{self.context.account}-{self._orders:08d}",
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=self.broker.fill_price(side, quote),
            position=self.broker.position(symbol),
        )
        verdict = await self._risk_check(order)
        if not verdict.approved:
            self.counts["refused"] += 1
            logger.info("order %s refused: %s", order.order_id, verdict.reason)
            return False
        if not await self._ledger_allows(order, signal_id):
            return False
        fill = self.broker.execute(order.order_id, symbol, side, quantity, quote)
        if signal_id is not None:
            self._traded_signals.add(signal_id)
        if self.ledger is not None:  # queued, never awaited: the handler does not wait
            self.ledger.record(fill_record(fill, account=self.context.account,
                                           seq=self.broker.fills, ts_ns=self.clock.now_ns(),
                                           signal_id=signal_id))  # fmt: skip
        self.fill_log.append((self.clock.now_ns(), fill))
        self.counts["fills"] += 1
        self.marks[symbol] = quote.mid
        position = self.broker.positions[symbol]
        change = PositionChange(symbol=symbol, quantity=position.quantity,
                                delta=fill.quantity if side == "BUY" else -fill.quantity,
                                avg_price=position.avg_cost)  # fmt: skip
        balance = self.balance()
        self._note_equity(balance)
        # One batch: over Redis one round trip for the three, not three in a row while the
        # next signal waits behind this one.
        await self.publish_together(
            (f"portfolio.fill.{symbol}", fill, MessagePriority.HIGH),
            (f"portfolio.position.{symbol}", change, MessagePriority.NORMAL),
            (BALANCE_TOPIC, balance, MessagePriority.NORMAL),
        )
        logger.debug("filled %s (%s)", fill, reason)
        return True

    async def _ledger_allows(self, order: OrderCheck, signal_id: str | None) -> bool:
        """Whether the fill of ``order`` can be recorded: room in the ledger's queue, and a
        record the ledger accepts (checked before the book changes, so both stay equal)."""
        ledger = self.ledger
        if ledger is None:
            return True
        if not ledger.has_room():
            self.counts["ledger_full"] += 1
            await self.degrade(_LEDGER_BACKLOG, "the ledger's write queue is full: no new orders")
            return False
        fee = self.broker.commission(order.quantity, order.price)
        proposed = Fill(order_id=order.order_id, symbol=order.symbol, side=order.side,
                        quantity=order.quantity, price=order.price, fee=fee)  # fmt: skip
        try:
            ledger.check(fill_record(proposed, account=self.context.account,
                                     seq=self.broker.fills + 1, ts_ns=self.clock.now_ns(),
                                     signal_id=signal_id))  # fmt: skip
        except InvalidRecordError as exc:
            self.counts["rejected"] += 1
            logger.warning("order %s not placed: %s", order.order_id, exc)
            return False
        return True

    async def _risk_check(self, order: OrderCheck) -> OrderCheckResult:
        try:
            reply = await self.bus.request(
                CHECK_TOPIC,
                order,
                timeout=self.config.risk_check_timeout_s,
                priority=MessagePriority.HIGH,
            )
        except MessageBusError as exc:  # timeout, nobody serving, bus down, remote failure
            self.counts["risk_fallbacks"] += 1
            await self.degrade(_RISK_SILENT, f"risk did not answer ({exc}); using local limits")
            book = self.broker.open_positions()
            return self.local_check.check(order, book, self._marks_for_book(), self.clock.now_ns())
        await self.recover(_RISK_SILENT)
        payload = reply.payload
        return (
            payload
            if isinstance(payload, OrderCheckResult)
            else msgspec.convert(payload, OrderCheckResult)
        )

    async def _quote(self, symbol: str) -> Quote | None:
        """The hub's current quote of ``symbol`` (from the followed L1 cache when followed)."""
        try:
            data = await self.marketdata.get_data(symbol, DataType.QUOTE)
        except MarketDataError as exc:
            logger.warning("no quote for %s: %s", symbol, exc)
            return None
        quote = data[symbol][DataType.QUOTE].data
        return quote if isinstance(quote, Quote) else None

    # --- the book ----------------------------------------------------------------------------

    def _marks_for_book(self) -> dict[str, float]:
        """Marks of every open position: the latest mid, else the average cost."""
        return {
            symbol: self.marks.get(symbol, position.avg_cost)
            for symbol, position in self.broker.positions.items()
            if position.quantity != 0
        }

    def balance(self) -> PortfolioBalance:
        broker = self.broker
        marks = self._marks_for_book()
        open_positions = broker.open_positions()
        return PortfolioBalance(
            account=self.context.account,
            cash=broker.cash,
            equity=broker.equity(marks),
            gross_exposure=broker.gross_exposure(marks),
            net_exposure=broker.market_value(marks),
            realised_pnl=broker.realised_pnl,
            unrealised_pnl=broker.unrealised_pnl(marks),
            commissions=broker.commissions,
            positions=open_positions,
            avg_costs={s: broker.positions[s].avg_cost for s in open_positions},
            prices=marks,
        )

    async def publish_balance(self) -> None:
        balance = self.balance()
        self._note_equity(balance)
        await self.publish(BALANCE_TOPIC, balance)

    def _note_equity(self, balance: PortfolioBalance | None) -> None:
        """Keep the equity curve in the ledger: the last balance of each instant (a fill and a
        tick can share one), written once the clock has moved on or at stop (``None``)."""
        if self.ledger is None:
            return
        now = self.clock.now_ns()
        pending = self._unrecorded_equity
        if pending is not None and (balance is None or pending.ts_ns != now):
            self.ledger.record(pending, replaceable=True)
        self._unrecorded_equity = None if balance is None else equity_record(balance, now)

    def health_detail(self) -> dict[str, Any]:
        balance = self.balance()
        return {
            **self.counts,
            "equity": round(balance.equity, 2),
            "positions": len(balance.positions),
            "realised_pnl": round(balance.realised_pnl, 2),
            "unrealised_pnl": round(balance.unrealised_pnl, 2),
        }
