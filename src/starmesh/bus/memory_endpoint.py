"""One instance attached to the embedded transport: its inbox, its consumer task, and the
FLASH_CRASH handled at once.

The consumer hands the most urgent lane's queued messages to the client's run handler in one
call (entries, one ``deliver`` each), yields to the event loop every ``_BATCH`` messages, and
retries or dead-letters a failure through the transport.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from starmesh.bus.eager import start_eagerly
from starmesh.bus.inbox import PriorityInbox, Queued
from starmesh.bus.transport import DeliveryHandler, RunDeliveryHandler, address_of
from starmesh.core.enums import EngineType
from starmesh.core.errors import MessageBusError, NotHandledError
from starmesh.core.message import Message
from starmesh.core.topics import validate_pattern

if TYPE_CHECKING:
    from starmesh.bus.memory import MemoryTransport

__all__ = ["MemoryEndpoint"]

_BATCH = 256
"""A consumer yields to the event loop after this many messages handled without waiting."""


class MemoryEndpoint:
    def __init__(
        self,
        transport: MemoryTransport,
        engine: EngineType,
        instance: str,
        deliver: DeliveryHandler,
        inbox: PriorityInbox,
        deliver_run: RunDeliveryHandler | None = None,
    ) -> None:
        self.engine = engine
        self.instance = instance
        self._address = address_of(engine, instance)
        self._transport = transport
        self._deliver = deliver
        self._deliver_run = deliver_run
        self.inbox = inbox
        self.patterns: list[str] = []
        self.delivered = 0
        self.failed = 0
        self._closing = False
        self._at_once: asyncio.Future[None] | None = None
        """An async handler started by :meth:`deliver_at_once`, still running."""
        self.always_at_once = False
        """Every message, not only FLASH_CRASH, is handled at once when the consumer is parked."""
        self._task = asyncio.create_task(self._consume(), name=f"starmesh-memory:{self._address}")

    @property
    def address(self) -> str:
        return self._address

    async def subscribe(self, pattern: str) -> None:
        validate_pattern(pattern)
        if self._closing:
            raise MessageBusError(f"endpoint {self._address} is closed")
        if pattern not in self.patterns:
            self.patterns.append(pattern)
            self._transport._add_route(self, pattern)

    async def unsubscribe(self, pattern: str) -> None:
        if pattern in self.patterns:
            self.patterns.remove(pattern)
            self._transport._remove_route(self, pattern)

    async def close(self) -> None:
        if not self._closing:
            for pattern in list(self.patterns):
                await self.unsubscribe(pattern)
            self._closing = True
            if self._at_once is not None:  # it has the turn: the consumer waits for it
                await asyncio.wait({self._at_once})
            self.inbox.wake()
        await asyncio.shield(self._task)
        self._transport._forget_endpoint(self)

    def handle_at_once(self) -> None:
        """Handle every message at once when the consumer is parked, not only FLASH_CRASH:
        for a subscriber whose every message may be the urgent one (the crash detector's
        quotes), and whose handler is quick, since the publisher pays for it.
        """
        self.always_at_once = True
        self._transport._plans_changed()  # its messages leave the plain path

    def deliver_at_once(self, message: Message) -> bool:
        """Handle ``message`` now, in the publisher's turn, if the consumer is parked (idle,
        nothing queued): it would be next anyway, and waiting for the event loop to schedule
        the consumer behind every other ready task is what a FLASH_CRASH cannot afford.
        False (nothing done) if the consumer is busy: then it is queued like any message.

        A plain handler has finished when this returns. An async one runs now up to its
        first real wait (most never wait: they publish in process), then goes on in a task of
        its own; the consumer waits for it (what arrives meanwhile stays queued).
        """
        if self._closing or not self.inbox.hold():
            return False
        try:
            pending = self._deliver(message)
        except Exception as exc:
            self._handled_at_once(message, exc)
            return True
        if pending is None:
            self._handled_at_once(message, None)
            return True
        outcome = start_eagerly(pending, name=f"starmesh-at-once:{self._address}")
        if outcome.done():
            self._handled_at_once(message, _error_of(outcome))
            return True
        self._at_once = outcome
        outcome.add_done_callback(lambda done: self._handled_at_once(message, _error_of(done)))
        return True

    def _handled_at_once(self, message: Message, error: BaseException | None) -> None:
        self._at_once = None
        if error is None:
            self.delivered += 1
        elif isinstance(error, NotHandledError):
            self._transport._not_handled += 1  # unsubscribed meanwhile
        else:
            self.failed += 1
            # Retried by the consumer, dead-lettered after the last attempt, like any delivery.
            cause = error if isinstance(error, Exception) else RuntimeError(repr(error))
            self._transport._delivery_failed(self, message, cause)
        self.inbox.release()

    async def _consume(self) -> None:
        """Deliver batches: the most urgent lane's queued messages go to ``deliver_run`` in
        one call (entries to ``deliver``, one each); a run ends where a handler awaits,
        and then other tasks run and what is more urgent goes first. The loop gets a turn
        after each batch of ``_BATCH`` messages.
        """
        inbox = self.inbox
        lanes = inbox.lanes
        run = self._deliver_run
        transport = self._transport
        budget = _BATCH  # messages left before the loop gets a turn, across lanes
        while True:
            priority = inbox.most_urgent()
            if not priority:
                if self._closing:
                    return
                await inbox.wait()
                budget = _BATCH
                continue
            lane = lanes[priority]
            failed: Queued | None
            outcome: Awaitable[None] | Exception | None
            if run is not None and type(lane[0]) is Message:
                # No handler runs between two messages of a run unless one awaits, and then
                # the run ends: nothing can arrive in between, more urgent or not.
                taken, failed, outcome = run(lane, budget)
            else:
                taken, failed, outcome = self._deliver_each(priority, lane, budget)
            inbox.freed(priority, taken)  # before any wait: other tasks run meanwhile
            if outcome is not None and not isinstance(outcome, Exception):
                try:
                    await outcome
                    outcome = None
                except Exception as exc:
                    outcome = exc
            if outcome is None:
                self.delivered += taken
            else:
                self.delivered += taken - 1
                if isinstance(outcome, NotHandledError):
                    transport._not_handled += 1  # unsubscribed while it was queued
                else:
                    self.failed += 1
                    assert failed is not None  # an error names its message
                    transport._delivery_failed(self, failed, outcome)
            budget -= taken
            if budget <= 0:
                # Handlers that never await would otherwise starve publishers and other engines.
                budget = _BATCH
                await asyncio.sleep(0)

    def _deliver_each(
        self, priority: int, lane: deque[Queued], limit: int
    ) -> tuple[int, Queued | None, Awaitable[None] | Exception | None]:
        """What runs do not take, one ``deliver`` each: entries (a retry; a conflated value,
        whose place a newer one may take until it is taken here), and every message when
        the endpoint has no run handler. Stops as a run does, and before a bare message a run
        handler can take."""
        inbox = self.inbox
        deliver = self._deliver
        runs = self._deliver_run is not None
        taken = 0
        while taken < limit and lane:
            item = lane[0]
            if type(item) is Message:
                if runs:
                    break
                message = item
            else:
                inbox.taken(priority, item)
                message = item.message  # type: ignore[union-attr]
            lane.popleft()
            taken += 1
            try:
                outcome = deliver(message)
            except Exception as exc:
                return taken, item, exc
            if outcome is not None:
                return taken, item, outcome
        return taken, None, None


def _error_of(outcome: asyncio.Future[None]) -> BaseException | None:
    return asyncio.CancelledError() if outcome.cancelled() else outcome.exception()
