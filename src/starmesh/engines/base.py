"""The engine base: what every engine of the platform is built on.

An engine receives everything it uses from the composition root (``starmesh.platform``): its
bus client, its market-data client, the clock and its typed config. It never reads wall time
and never imports a transport, so the same engine runs embedded, over Redis, and in a
backtest whose clock moves with the data. What it listens to is declared in one place:

    class Strategy(Engine):
        kind = EngineType.STRATEGY

        def routes(self) -> Routes:
            return {"risk.alert.*": self.on_alert, "ml.prediction.*": self.on_prediction}

        def market_data(self) -> MarketDataRoutes:
            return {DataType.QUOTE: self.on_quote}

Life: ``starting -> running -> stopping -> stopped``; ``degraded`` while running on a
fallback (see :meth:`Engine.degrade`), ``faulted`` when start-up failed. Each change, and a
heartbeat every few seconds, goes out on ``system.health.<engine>`` with the counters; every
engine follows ``system.health.*``, so each knows which peers are up.

State that survives: given a ledger (``EngineContext.ledger``), an engine rebuilds its state
in :meth:`Engine.restore` before its first message, and :meth:`Engine.checkpoint_state` is
written as a checkpoint every ``checkpoint_interval_s``, at stop, and whenever the engine
calls :meth:`Engine.save_checkpoint`. The heartbeat says which checkpoint it resumed from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

import msgspec

from starmesh.client.envelopes import PayloadLike
from starmesh.client.messagebus import MessageBusClient, Responder
from starmesh.client.subscription import Handler
from starmesh.core.clock import EngineClock, Timer, TimerCallback
from starmesh.core.enums import DataType, EngineState, EngineType, MessagePriority
from starmesh.core.errors import MarketDataError, MessageBusError
from starmesh.core.message import Message
from starmesh.core.payloads import HealthStatus
from starmesh.engines.metering import RouteMeter
from starmesh.engines.peers import PeerDirectory
from starmesh.marketdata.client import MarketDataClient, SnapshotHandler
from starmesh.storage import EngineLedger

__all__ = ["Engine", "EngineContext", "MarketDataRoutes", "Routes", "Services", "Timers"]

logger = logging.getLogger(__name__)

Routes = Mapping[str, Handler]
"""Topic pattern -> handler of the messages on it."""
MarketDataRoutes = Mapping[DataType, SnapshotHandler]
"""Data type -> handler of each update of the platform's symbols."""
Services = Mapping[str, Responder]
"""Request topic -> responder."""
Timers = Mapping[str, tuple[float, TimerCallback]]
"""Name -> (interval in seconds of the engine's clock, callback)."""

HEALTH_PREFIX = "system.health."
_HEALTH_PATTERN = f"{HEALTH_PREFIX}*"
_HUB_SILENT = "hub_silent"


@dataclass(frozen=True)
class EngineContext:
    """What the composition root gives every engine."""

    bus: MessageBusClient
    marketdata: MarketDataClient
    clock: EngineClock
    symbols: tuple[str, ...]
    """The platform's universe: the symbols the engines follow and trade."""
    heartbeat_s: float = 2.0
    meter: RouteMeter | None = None
    """Shared route accounting, when the platform keeps it."""
    account: str = "paper"
    extra: Mapping[str, Any] = field(default_factory=dict)
    ledger: EngineLedger | None = None
    """Where the engine's records and checkpoints go, when the platform keeps a ledger."""


class Engine:
    """Subclasses set ``kind`` and declare ``routes``, ``market_data``, ``services`` and
    ``timers``; ``on_start`` and ``on_stop`` run once each. Their calculations live in plain
    classes apart from this wiring.
    """

    kind: ClassVar[EngineType]

    def __init__(self, context: EngineContext) -> None:
        if context.bus.engine is not self.kind:
            raise ValueError(
                f"{type(self).__name__} is the {self.kind.value} engine; "
                f"its bus client is {context.bus.engine.value}'s"
            )
        self.context = context
        self.bus = context.bus
        self.marketdata = context.marketdata
        self.clock = context.clock
        self.symbols = context.symbols
        self.ledger = context.ledger
        self.resumed_from: dict[str, Any] | None = None
        """What :meth:`restore` resumed from (a checkpoint, how many records), for health."""
        self.peers = PeerDirectory()
        self.state = EngineState.STOPPED
        self._degraded: dict[str, str] = {}
        self._streams_wanted: list[DataType] = []
        """Market data followed that the hub has not yet agreed to stream."""
        self._timers: list[Timer] = []
        self._started_at = 0.0
        self._messages_in = 0
        self._last_latency_ns: int | None = None
        self.fault: str | None = None

    # --- what an engine declares -----------------------------------------------------------

    def routes(self) -> Routes:
        return {}

    def market_data(self) -> MarketDataRoutes:
        return {}

    def services(self) -> Services:
        return {}

    def timers(self) -> Timers:
        return {}

    def urgent_topics(self) -> tuple[str, ...]:
        """Topics this engine publishes at FLASH_CRASH: their routes are worked out at start,
        not on the first (and most urgent) message."""
        return ()

    def market_data_at_once(self) -> bool:
        """True for an engine that must see each update as the hub publishes it, not after
        the work already waiting for the event loop (Risk's crash detector). In process, its
        updates are then handled in the hub's turn whenever it is idle, so its market-data
        handlers must be quick: the hub waits for them."""
        return False

    async def on_start(self) -> None:
        """After the subscriptions are in place and the clients started; before ``running``."""

    async def on_stop(self) -> None:
        """After the timers stopped; the clients still run."""

    async def ready(self) -> None:
        """Return once the engine has what it needs to work (a warm-up done in the
        background). A simulated run waits for it before its clock starts moving."""

    def health_detail(self) -> dict[str, Any]:
        """Engine-specific figures for the heartbeat."""
        return {}

    async def restore(self, ledger: EngineLedger) -> dict[str, Any] | None:
        """Rebuild the engine's state from the ledger, before any message or timer; returns
        what it resumed from (shown in the heartbeat as ``resumed_from``)."""
        return None

    def checkpoint_state(self) -> msgspec.Struct | None:
        """The state to checkpoint (JSON-encodable), or None if the engine keeps none."""
        return None

    def save_checkpoint(self) -> None:
        """Queue a checkpoint of :meth:`checkpoint_state` now; never waits for the database."""
        if self.ledger is None:
            return
        state = self.checkpoint_state()
        if state is not None:
            self.ledger.checkpoint(msgspec.json.encode(state).decode(), self.clock.now_ns())

    # --- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.state is not EngineState.STOPPED:
            return
        self.state = EngineState.STARTING
        self._started_at = self.clock.monotonic()
        try:
            if self.ledger is not None:  # before any message: a backlog meets the old state
                self.resumed_from = await self.restore(self.ledger)
            # Handlers in place before the client starts: a backlog waiting for this engine
            # (a restart over Redis) finds them.
            self.bus.observe(self._on_delivery)
            await self.bus.subscribe(_HEALTH_PATTERN, self._on_health)
            for pattern, handler in self.routes().items():
                await self.bus.subscribe(pattern, handler)
            for topic, responder in self.services().items():
                await self.bus.serve(topic, responder)
            await self.bus.start()
            for topic in self.urgent_topics():
                self.bus.plan_ahead(topic)
            if self.market_data_at_once():
                self.bus.handle_market_data_at_once()
            await self.marketdata.start()
            await self._heartbeat()
            for data_type, on_update in self.market_data().items():
                await self.marketdata.subscribe(self.symbols, data_type, on_update, ask_hub=False)
                self._streams_wanted.append(data_type)
            await self._ask_hub()
            await self.on_start()
        except BaseException as exc:
            self.fault = f"{type(exc).__name__}: {exc}"
            await self._set_state(EngineState.FAULTED)
            raise
        timers = {"heartbeat": (self.context.heartbeat_s, self._beat), **self.timers()}
        if self.ledger is not None and self.checkpoint_state() is not None:
            timers["checkpoint"] = (self.ledger.checkpoint_interval_s, self.save_checkpoint)
        self._timers = [
            self.clock.every(interval, callback, name=f"{self.name}:{name}")
            for name, (interval, callback) in timers.items()
        ]
        await self._set_state(EngineState.DEGRADED if self._degraded else EngineState.RUNNING)

    def pause(self) -> None:
        """Stop the timers: no more periodic work. A platform pauses every engine, lets the
        bus deliver what is in flight, then stops them, so nothing sent is lost.
        """
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    async def stop(self) -> None:
        """Stop the timers, then the clients (which hand over what is queued first)."""
        if self.state in (EngineState.STOPPED, EngineState.STOPPING):
            return
        await self._set_state(EngineState.STOPPING)
        self.pause()
        try:
            await self.on_stop()
        finally:
            await self.marketdata.stop()
            if self.bus.running:
                await self._set_state(EngineState.STOPPED)
            self.state = EngineState.STOPPED
            self.bus.observe(None)
            await self.bus.stop()
            self.save_checkpoint()  # last: stopping the bus lets handlers finish what it held

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def name(self) -> str:
        return self.kind.value

    # --- degraded operation ----------------------------------------------------------------

    async def degrade(self, cause: str, detail: str) -> None:
        """Note a fallback in use (``cause`` names it, e.g. ``risk_silent``); the engine is
        ``degraded`` while any is.
        """
        new = cause not in self._degraded
        self._degraded[cause] = detail
        if new:
            logger.warning("%s degraded: %s", self.name, detail)
            if self.state is EngineState.RUNNING:
                await self._set_state(EngineState.DEGRADED)

    async def recover(self, cause: str) -> None:
        if self._degraded.pop(cause, None) is None:
            return
        logger.info("%s recovered from %s", self.name, cause)
        if self.state is EngineState.DEGRADED and not self._degraded:
            await self._set_state(EngineState.RUNNING)

    # --- publishing --------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: PayloadLike,
        priority: MessagePriority = MessagePriority.NORMAL,
    ) -> str:
        """Publish with the engine's clock as the event time."""
        return await self.bus.publish(
            topic, payload, priority=priority, ts_event=self.clock.now_ns()
        )

    async def publish_together(self, *messages: tuple[str, PayloadLike, MessagePriority]) -> None:
        """Publish ``(topic, payload, priority)`` messages in order, in one batch: over Redis
        one round trip for all rather than one each; returns once every one is in (raises
        the first failure, as ``publish`` would)."""
        now = self.clock.now_ns()
        sent = [self.bus.post(topic, payload, priority=priority, ts_event=now)
                for topic, payload, priority in messages]  # fmt: skip
        for posted in sent:
            # One by one, not gather: a post already done (in process, always) is awaited
            # without a turn of the event loop.
            await posted

    def post(
        self,
        topic: str,
        payload: PayloadLike,
        priority: MessagePriority = MessagePriority.NORMAL,
    ) -> None:
        """Publish from a market-data handler without waiting for the bus to take it (see
        :meth:`MessageBusClient.post`): over Redis the next update is not held behind this
        publish's round trip. Posts keep the order they were made in."""
        self.bus.post(topic, payload, priority=priority, ts_event=self.clock.now_ns())

    # --- health ------------------------------------------------------------------------------

    def health(self) -> HealthStatus:
        stats = self.bus.stats()
        detail = {**self.health_detail(), **self._degraded}
        if self.ledger is not None:
            detail["ledger"] = self.ledger.stats()
            detail["resumed_from"] = self.resumed_from
        if self.fault is not None:
            detail["fault"] = self.fault
        return HealthStatus(
            engine=self.name,
            instance=self.bus.instance,
            state=self.state,
            uptime_s=max(0.0, self.clock.monotonic() - self._started_at),
            messages_in=self._messages_in,
            messages_out=stats["published"],
            handler_errors=stats["handler_failures"],
            last_latency_us=(
                None if self._last_latency_ns is None else round(self._last_latency_ns / 1e3, 1)
            ),
            interval_s=self.context.heartbeat_s,
            detail=detail,
        )

    async def _set_state(self, state: EngineState) -> None:
        if state is self.state:
            return
        self.state = state
        await self._heartbeat()

    async def _ask_hub(self) -> None:
        """Ask the hub to stream what this engine follows; while it does not answer (not up
        yet, in another process), the engine is degraded and asks again at each heartbeat.
        """
        if not self._streams_wanted:
            return
        try:
            await self.marketdata.request_streams(self.symbols, self._streams_wanted)
        except MarketDataError as exc:
            await self.degrade(_HUB_SILENT, f"the MarketData Hub does not answer: {exc}")
            return
        self._streams_wanted = []
        await self.recover(_HUB_SILENT)

    async def _beat(self) -> None:
        await self._ask_hub()
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        if not self.bus.running:
            return
        try:
            await self.bus.publish(
                f"{HEALTH_PREFIX}{self.name}", self.health(), ts_event=self.clock.now_ns()
            )
        except MessageBusError as exc:
            logger.warning("%s could not publish its heartbeat: %s", self.name, exc)

    def _on_health(self, message: Message) -> None:
        if isinstance(message.payload, HealthStatus):
            self.peers.seen(message.payload, self.clock.now_ns())

    def _on_delivery(self, message: Message, pattern: str) -> None:
        if pattern == _HEALTH_PATTERN:
            return  # the platform's own chatter: not a route of the architecture
        # Latency is a measurement of the bus, in wall time like ts_publish: not a decision.
        latency_ns = time.time_ns() - message.ts_publish
        self._messages_in += 1
        self._last_latency_ns = latency_ns
        meter = self.context.meter
        if meter is not None:
            meter.record(message.source, self.kind, pattern, latency_ns)
