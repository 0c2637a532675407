"""Messages that arrive over HTTP (``POST /v1/messages``) for this engine instance.

They go through one priority inbox and one consumer task, most urgent first, into the same
delivery callback the bus endpoints use (so the same handlers, the same dedup by message id).
A handler that raises is retried up to ``max_deliveries`` attempts, then the message becomes
a local dead letter. The HTTP answer waits until each message of the request is settled, so a
200 tells the publisher it may forget them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from starmesh.bus.http import HttpAuth, MessagesEndpoint, Receipt, ReceiverClosed
from starmesh.bus.inbox import InboxEntry, PriorityInbox
from starmesh.bus.transport import DeadLetter, DeliveryHandler
from starmesh.core.clock import now_ns
from starmesh.core.codec import MessageCodec
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.core.errors import NotHandledError
from starmesh.core.message import Message

__all__ = ["HttpReceiver", "http_inlet"]

logger = logging.getLogger("starmesh.client")

_HANDLED, _DUPLICATE, _NOT_HERE = "handled", "duplicate", "not handled here"


class _Arrival(InboxEntry):
    __slots__ = ("settled",)

    def __init__(self, message: Message, settled: asyncio.Future[str]) -> None:
        super().__init__(message)
        self.settled = settled


class HttpReceiver:
    def __init__(
        self,
        engine: EngineType,
        deliver: DeliveryHandler,
        *,
        seen: Callable[[str], bool],
        max_deliveries: int,
        lane_capacity: int,
        dead_letter_capacity: int,
    ) -> None:
        self._engine = engine
        self._deliver = deliver
        self._seen = seen
        self._max_deliveries = max_deliveries
        self._inbox = PriorityInbox(lane_capacity)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_capacity)
        self.counts = {"received": 0, "handled": 0, "duplicates": 0, "dead_lettered": 0}

    def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._consume(), name=f"http-receiver:{self._engine}")

    async def close(self) -> None:
        """Refuse new requests; settle what is queued."""
        self._closing = True
        self._inbox.wake()
        if self._task is not None:
            await asyncio.shield(self._task)
            self._task = None

    async def receive(self, messages: list[Message]) -> Receipt:
        if self._closing or self._task is None:
            raise ReceiverClosed(f"{self._engine.value} is not receiving (stopped or stopping)")
        loop = asyncio.get_running_loop()
        arrivals = [_Arrival(message, loop.create_future()) for message in messages]
        self.counts["received"] += len(arrivals)
        for arrival in arrivals:
            await self._inbox.put(arrival)  # waits while its lane is full: back-pressure
        accepted = duplicates = 0
        for arrival in arrivals:
            outcome = await arrival.settled
            if outcome == _NOT_HERE:
                return Receipt(
                    accepted=accepted,
                    duplicates=duplicates,
                    error=f"no handler of this instance for {arrival.message.topic!r}",
                )
            accepted += 1
            duplicates += outcome == _DUPLICATE
        return Receipt(accepted=accepted, duplicates=duplicates)

    async def _consume(self) -> None:
        inbox = self._inbox
        while True:
            entry = inbox.get_nowait()
            if entry is None:
                if self._closing:
                    return
                await inbox.wait()
                continue
            assert isinstance(entry, _Arrival)
            if not entry.settled.done():
                entry.settled.set_result(await self._handle(entry))

    async def _handle(self, entry: _Arrival) -> str:
        message = entry.message
        if self._seen(message.id):
            self.counts["duplicates"] += 1
            return _DUPLICATE
        while True:
            try:
                pending = self._deliver(message)
                if pending is not None:
                    await pending
            except NotHandledError:
                return _NOT_HERE
            except Exception as exc:
                entry.deliveries += 1
                if entry.deliveries < self._max_deliveries:
                    continue
                reason = f"handling failed {entry.deliveries} times; last error: {exc!r}"
                self.dead_letters.append(
                    DeadLetter(engine=self._engine, reason=reason, ts_ns=now_ns(), message=message)
                )
                self.counts["dead_lettered"] += 1
                logger.warning("dead letter (received over HTTP) %s: %s", message.id, reason)
                return _HANDLED
            self.counts["handled"] += 1
            return _HANDLED


def http_inlet(
    engine: EngineType,
    deliver: DeliveryHandler,
    *,
    seen: Callable[[str], bool],
    settings: Settings,
    auth: HttpAuth,
) -> tuple[HttpReceiver, MessagesEndpoint]:
    """A receiver for ``engine`` and the ``POST /v1/messages`` endpoint feeding it."""
    receiver = HttpReceiver(
        engine,
        deliver,
        seen=seen,
        max_deliveries=settings.max_deliveries,
        lane_capacity=settings.lane_capacity,
        dead_letter_capacity=settings.dead_letter_capacity,
    )
    endpoint = MessagesEndpoint(
        receiver,
        auth=auth,
        codec=MessageCodec(settings.max_message_bytes),
        max_body=settings.http_max_body_bytes,
    )
    return receiver, endpoint
