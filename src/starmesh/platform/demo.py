"""The embedded demo behind ``starmesh run``: eight engines trading on simulated quotes.

Every engine is an ordinary starmesh client on the in-process bus; they talk only through
topics, exactly as they would across processes over Redis:

    MarketData Hub (simulated source) --streamed quotes--> strategy, portfolio, risk, vpin, ml
    strategy --signals--> portfolio --positions--> risk
    risk --alerts (URGENT), flash-crash alerts (FLASH_CRASH)--> strategy
    vpin --toxicity--> strategy, risk;  ml --predictions--> strategy
    collateral, analytics --request/reply--> portfolio
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from starmesh.client import MessageBusClient, create_messagebus_client
from starmesh.core.config import Settings
from starmesh.core.enums import DataType, EngineType, MessagePriority
from starmesh.core.message import Message
from starmesh.core.payloads import (
    FlashCrashAlert,
    MarginStatus,
    PerformanceMetrics,
    PositionChange,
    Prediction,
    Quote,
    RiskAlert,
    Snapshot,
    ToxicityWarning,
    TradingSignal,
)
from starmesh.marketdata.client import MarketDataClient
from starmesh.marketdata.factory import create_marketdata_client, create_marketdata_hub
from starmesh.marketdata.hub import MarketDataHub
from starmesh.marketdata.sources.simulated import SimulatedSource

__all__ = ["DEFAULT_SYMBOLS", "Demo", "EngineActivity"]

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "SPY")
_EQUITY = 1_000_000.0


@dataclass
class EngineActivity:
    """What one engine of the demo has done, for the live display."""

    engine: EngineType
    client: MessageBusClient
    events: dict[str, int] = field(default_factory=dict)
    last: str = ""

    def note(self, event: str, detail: str = "") -> None:
        self.events[event] = self.events.get(event, 0) + 1
        if detail:
            self.last = detail


class Demo:
    """Starts the hub and the engines, runs until told to stop, stops them with nothing left
    unhandled.
    """

    def __init__(
        self,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        quotes_per_second: float = 2_000.0,
        seed: int = 7,
        settings: Settings | None = None,
    ) -> None:
        self.symbols = list(symbols)
        self.quotes_per_second = quotes_per_second
        self._random = random.Random(seed)
        self._seed = seed
        self._settings = settings or Settings()
        self.activity: dict[EngineType, EngineActivity] = {}
        self._market_data: dict[EngineType, MarketDataClient] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.hub: MarketDataHub | None = None

    async def start(self) -> None:
        # The hub streams every symbol's quotes at the wanted rate; the market runs 300 times
        # faster than the clock so that jumps (about one an hour) show within minutes.
        source = SimulatedSource(
            seed=self._seed,
            stream_interval_s=len(self.symbols) / self.quotes_per_second,
            speed=300.0,
        )
        self.hub = create_marketdata_hub([source], settings=self._settings)
        await self.hub.start()
        self.activity[EngineType.MARKETDATA] = EngineActivity(EngineType.MARKETDATA, self.hub.bus)
        engines = [
            EngineType.STRATEGY, EngineType.PORTFOLIO, EngineType.RISK, EngineType.VPIN,
            EngineType.ML, EngineType.COLLATERAL, EngineType.ANALYTICS,
        ]  # fmt: skip
        for engine in engines:
            client = create_messagebus_client(engine, settings=self._settings)
            await client.start()
            self.activity[engine] = EngineActivity(engine, client)
            self._market_data[engine] = create_marketdata_client(engine, bus=client)
            await self._market_data[engine].start()
        await self._wire_portfolio()
        await self._wire_strategy()
        await self._wire_risk()
        await self._wire_vpin()
        await self._wire_ml()
        self._tasks = [
            asyncio.create_task(self._every(1.0, self._collateral_tick), name="demo-collateral"),
            asyncio.create_task(self._every(1.0, self._analytics_tick), name="demo-analytics"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.hub is not None:
            await self.hub.stop()  # no more quotes; then the engines drain what they were sent
        for engine, activity in self.activity.items():
            if engine in self._market_data:
                await self._market_data[engine].stop()
                await activity.client.stop()

    def _client(self, engine: EngineType) -> MessageBusClient:
        return self.activity[engine].client

    async def _follow_quotes(
        self, engine: EngineType, handler: Callable[[Snapshot], Awaitable[None] | None]
    ) -> None:
        await self._market_data[engine].subscribe(self.symbols, DataType.QUOTE, handler)

    # --- strategy: moving-average crossover, halted by critical risk alerts ----------------

    async def _wire_strategy(self) -> None:
        me = self.activity[EngineType.STRATEGY]
        fast: dict[str, float] = {}
        slow: dict[str, float] = {}
        state: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        halted_until = 0.0

        def halt(reason: str) -> None:
            nonlocal halted_until
            halted_until = loop.time() + 2.0  # stand aside for two seconds
            me.note("halts", f"halted: {reason}")

        async def on_quote(snapshot: Snapshot) -> None:
            quote = _quote(snapshot)
            mid = quote.mid
            fast[quote.symbol] = 0.2 * mid + 0.8 * fast.get(quote.symbol, mid)
            slow[quote.symbol] = 0.02 * mid + 0.98 * slow.get(quote.symbol, mid)
            side = 1 if fast[quote.symbol] > slow[quote.symbol] else -1
            if state.get(quote.symbol, side) != side and loop.time() >= halted_until:
                action: Literal["BUY", "SELL"] = "BUY" if side > 0 else "SELL"
                signal = TradingSignal(
                    symbol=quote.symbol, action=action, quantity=100, strength=0.6, strategy="ema"
                )
                await me.client.publish(
                    f"strategy.signals.{action.lower()}", signal, priority=MessagePriority.HIGH
                )
                me.note("signals", f"{action} 100 {quote.symbol} @ {mid:.2f}")
            state[quote.symbol] = side

        def on_alert(message: Message) -> None:
            alert = message.payload
            if isinstance(alert, RiskAlert) and alert.severity == "critical":
                halt(alert.message)
            elif isinstance(alert, FlashCrashAlert):
                halt(f"flash crash {alert.symbol} -{alert.drop_pct:.1f}%")
            me.note("alerts")

        await self._follow_quotes(me.engine, on_quote)
        await me.client.subscribe("risk.alert.*", on_alert)
        await me.client.subscribe("risk.flash_crash.*", on_alert)
        await me.client.subscribe("ml.prediction.*", lambda m: me.note("predictions"))
        await me.client.subscribe("vpin.toxicity.*", lambda m: me.note("toxicity"))

    # --- portfolio: positions from signals; answers position requests ----------------------

    async def _wire_portfolio(self) -> None:
        me = self.activity[EngineType.PORTFOLIO]
        positions: dict[str, float] = {}
        prices: dict[str, float] = {}

        def on_quote(snapshot: Snapshot) -> None:
            quote = _quote(snapshot)
            prices[quote.symbol] = quote.mid

        async def on_signal(message: Message) -> None:
            signal: TradingSignal = message.payload
            delta = signal.quantity if signal.action == "BUY" else -signal.quantity
            positions[signal.symbol] = positions.get(signal.symbol, 0.0) + delta
            change = PositionChange(
                symbol=signal.symbol,
                quantity=positions[signal.symbol],
                delta=delta,
                avg_price=prices.get(signal.symbol, 0.0),
            )
            await me.client.publish(f"portfolio.position.{signal.symbol}", change)
            me.note("fills", f"{signal.symbol} position {change.quantity:+.0f}")

        def report(request: Message) -> dict[str, list[float]]:
            me.note("rpc")
            return {s: [q, prices.get(s, 0.0)] for s, q in positions.items()}

        await self._follow_quotes(me.engine, on_quote)
        await me.client.subscribe("strategy.signals.*", on_signal)
        await me.client.serve("portfolio.rpc.positions", report)

    # --- risk: gross exposure limit and flash-crash detection -----------------------------

    async def _wire_risk(self) -> None:
        me = self.activity[EngineType.RISK]
        recent: dict[str, deque[tuple[int, float]]] = {}
        positions: dict[str, float] = {}
        prices: dict[str, float] = {}
        limit = 0.5 * _EQUITY

        async def on_quote(snapshot: Snapshot) -> None:
            quote = _quote(snapshot)
            prices[quote.symbol] = quote.mid
            window = recent.setdefault(quote.symbol, deque(maxlen=50))
            window.append((snapshot.ts_event, quote.mid))
            high = max(price for _, price in window)
            if high and (high - quote.mid) / high > 0.02:
                alert = FlashCrashAlert(
                    symbol=quote.symbol,
                    price_from=high,
                    price_to=quote.mid,
                    window_ms=(window[-1][0] - window[0][0]) / 1e6,
                    message=f"{quote.symbol} fell {(high - quote.mid) / high:.1%}",
                )
                await me.client.publish(
                    f"risk.flash_crash.{quote.symbol}", alert, priority=MessagePriority.FLASH_CRASH
                )
                me.note("flash_crash", alert.message)
                window.clear()

        async def on_position(message: Message) -> None:
            change: PositionChange = message.payload
            positions[change.symbol] = change.quantity
            gross = sum(abs(q) * prices.get(s, 0.0) for s, q in positions.items())
            me.note("positions")
            if gross > limit:
                alert = RiskAlert(
                    rule="gross_exposure",
                    severity="critical",
                    message=f"gross exposure {gross:,.0f} over {limit:,.0f}",
                    value=gross,
                    limit=limit,
                )
                await me.client.publish(
                    "risk.alert.gross_exposure", alert, priority=MessagePriority.URGENT
                )
                me.note("alerts", alert.message)

        await self._follow_quotes(me.engine, on_quote)
        await me.client.subscribe("portfolio.position.*", on_position)
        await me.client.subscribe("collateral.margin.*", lambda m: me.note("margin"))
        await me.client.subscribe("vpin.toxicity.*", lambda m: me.note("toxicity"))

    # --- vpin: order-flow imbalance over volume buckets -----------------------------------

    async def _wire_vpin(self) -> None:
        me = self.activity[EngineType.VPIN]
        last_mid: dict[str, float] = {}
        buckets: dict[str, deque[float]] = {}
        flow: dict[str, list[float]] = {}

        async def on_quote(snapshot: Snapshot) -> None:
            quote = _quote(snapshot)
            previous = last_mid.get(quote.symbol, quote.mid)
            last_mid[quote.symbol] = quote.mid
            volume = (quote.bid_size + quote.ask_size) / 2
            buy, sell = flow.setdefault(quote.symbol, [0.0, 0.0])
            if quote.mid >= previous:
                buy += volume
            else:
                sell += volume
            flow[quote.symbol] = [buy, sell]
            if buy + sell >= 10_000:  # one bucket of volume
                history = buckets.setdefault(quote.symbol, deque(maxlen=20))
                history.append(abs(buy - sell) / (buy + sell))
                flow[quote.symbol] = [0.0, 0.0]
                vpin = sum(history) / len(history)
                if len(history) >= 5 and vpin > 0.5:
                    warning = ToxicityWarning(
                        symbol=quote.symbol,
                        vpin=min(vpin, 1.0),
                        threshold=0.5,
                        severity="warning",
                    )
                    await me.client.publish(f"vpin.toxicity.{quote.symbol}", warning)
                    me.note("warnings", f"{quote.symbol} VPIN {vpin:.2f}")

        await self._follow_quotes(me.engine, on_quote)

    # --- ml: a mean-reversion score as the "prediction" -----------------------------------

    async def _wire_ml(self) -> None:
        me = self.activity[EngineType.ML]
        history: dict[str, deque[float]] = {}

        async def on_quote(snapshot: Snapshot) -> None:
            quote = _quote(snapshot)
            window = history.setdefault(quote.symbol, deque(maxlen=100))
            window.append(quote.mid)
            if len(window) == window.maxlen and self._random.random() < 0.02:
                mean = sum(window) / len(window)
                spread = math.sqrt(sum((p - mean) ** 2 for p in window) / len(window)) or 1e-9
                score = (mean - quote.mid) / spread
                prediction = Prediction(
                    model="mean-reversion",
                    symbol=quote.symbol,
                    horizon="1m",
                    value=score,
                    confidence=min(1.0, abs(score) / 3),
                )
                await me.client.publish(f"ml.prediction.{quote.symbol}", prediction)
                me.note("predictions", f"{quote.symbol} z={score:+.2f}")

        await self._follow_quotes(me.engine, on_quote)

    # --- collateral and analytics: periodic, over request/reply ---------------------------

    async def _every(self, seconds: float, tick: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            await tick()

    async def _book(self, engine: EngineType) -> dict[str, tuple[float, float]]:
        """symbol -> (quantity, last price), asked of the portfolio engine."""
        reply = await self._client(engine).request("portfolio.rpc.positions", timeout=2.0)
        return {symbol: (q, price) for symbol, (q, price) in reply.payload.items()}

    async def _collateral_tick(self) -> None:
        me = self.activity[EngineType.COLLATERAL]
        book = await self._book(EngineType.COLLATERAL)
        used = 0.25 * sum(abs(q) * price for q, price in book.values())
        status = MarginStatus(
            account="DEMO",
            equity=_EQUITY,
            margin_used=used,
            margin_available=_EQUITY - used,
            utilization=used / _EQUITY,
        )
        await me.client.publish("collateral.margin.status", status)
        me.note("margin", f"utilisation {status.utilization:.1%}")

    async def _analytics_tick(self) -> None:
        me = self.activity[EngineType.ANALYTICS]
        book = await self._book(EngineType.ANALYTICS)
        exposure = sum(q * price for q, price in book.values())
        metrics = PerformanceMetrics(
            portfolio="DEMO",
            window="live",
            pnl=0.0,
            return_pct=0.0,
            volatility=abs(exposure) / _EQUITY,
        )
        await me.client.publish("analytics.performance.live", metrics)
        me.note("reports", f"net exposure {exposure:+,.0f}")


def _quote(snapshot: Snapshot) -> Quote:
    quote = snapshot.data
    assert isinstance(quote, Quote)
    return quote
