"""The contract every bus backend implements (memory, Redis Streams, HTTP).

A transport moves :class:`Message` objects between *endpoints*. An endpoint is one running
instance of an engine type: it subscribes patterns and has its messages delivered to one
callback, strictly most-urgent first. Delivery semantics, the same on every transport:

- A *shared* topic reaches each subscribing engine type once, handled by one of its instances
  (instances of a type share the load, like a Redis consumer group).
- A *broadcast* topic (market-data updates) reaches every subscribing instance.
- A delivery whose callback raises is retried, up to ``max_deliveries`` attempts in all, then
  kept as a dead letter with the reason. A callback error never stops the endpoint.
- ``send`` delivers to one endpoint by address: the reply path of request/reply. A transport
  may deliver what arrives that way as soon as it arrives, outside the priority order.
- Closing an endpoint first stops new deliveries, then handles everything already queued.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from starmesh.core.enums import EngineType
from starmesh.core.errors import ConfigurationError
from starmesh.core.message import Message

__all__ = [
    "DeadLetter",
    "DeliveryHandler",
    "Endpoint",
    "HandlesAtOnce",
    "PlansAhead",
    "Quiescent",
    "RunDeliveryHandler",
    "RunOutcome",
    "Transport",
    "TransportHealth",
    "address_of",
    "validate_instance",
]

DeliveryHandler = Callable[[Message], Awaitable[None] | None]
"""Receives each message delivered to an endpoint; raising asks for a redelivery.

It returns None when it finished synchronously, else an awaitable the endpoint awaits: plain
function handlers then cost no coroutine per message.
"""

RunOutcome = tuple[int, Message | None, Awaitable[None] | Exception | None]
"""What a :data:`RunDeliveryHandler` did: how many messages it took from the lane, and the
last one with its unfinished awaitable or its error (what ``deliver`` would have returned or
raised), or (taken, None, None) when every one taken was handled."""

RunDeliveryHandler = Callable[["deque[Any]", int], RunOutcome]
"""Takes and handles up to ``limit`` bare :class:`Message` s from the front of a lane in one
call (stopping before anything else, and after a message whose handling is unfinished or
failed): what ``deliver`` does, without a call per message."""


_INSTANCE_RE: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def validate_instance(instance: str) -> str:
    if not _INSTANCE_RE.match(instance):
        raise ConfigurationError(
            f"instance name {instance!r} must be 1-128 characters of letters, digits, '_', '.', '-'"
        )
    return instance


def address_of(engine: EngineType, instance: str) -> str:
    """The transport-neutral address of one instance, used in ``Message.reply_to``."""
    return f"{engine.value}/{instance}"


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message given up on, and why. ``message`` is None when the bytes did not decode."""

    engine: EngineType
    reason: str
    ts_ns: int
    message: Message | None = None
    raw: bytes | None = None


class TransportHealth(msgspec.Struct, frozen=True, kw_only=True):
    transport: str
    healthy: bool
    detail: str = ""


@runtime_checkable
class Endpoint(Protocol):
    """One engine instance attached to a transport."""

    @property
    def address(self) -> str: ...

    async def subscribe(self, pattern: str) -> None: ...

    async def unsubscribe(self, pattern: str) -> None: ...

    async def close(self) -> None:
        """Stop new deliveries, deliver what is queued, then detach."""
        ...


@runtime_checkable
class Transport(Protocol):
    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Close every endpoint (delivering what is queued) and release resources."""
        ...

    async def publish(self, message: Message) -> int:
        """Deliver to every subscriber; returns how many engine types it was routed to."""
        ...

    async def send(self, address: str, message: Message) -> bool:
        """Deliver to one endpoint; False when no endpoint has that address."""
        ...

    async def open_endpoint(
        self,
        engine: EngineType,
        instance: str,
        deliver: DeliveryHandler,
        *,
        deliver_run: RunDeliveryHandler | None = None,
    ) -> Endpoint:
        """Attach an instance: ``deliver`` gets each message; a transport that queues in
        process may hand queued runs to ``deliver_run`` instead, when given."""
        ...

    async def dead_letters(self, engine: EngineType, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters of an engine type, newest first."""
        ...

    def health(self) -> TransportHealth: ...

    def stats(self) -> dict[str, int]: ...


@runtime_checkable
class PlansAhead(Protocol):
    """A transport that routes in process and can work a topic's route out before its first
    message (the in-process one): a rare, urgent topic then pays nothing when it matters."""

    def plan_ahead(self, topic: str) -> None:
        """Route ``topic`` now, and again whenever subscriptions change."""
        ...


@runtime_checkable
class HandlesAtOnce(Protocol):
    """An endpoint that can have every message handled in the publisher's turn while its
    consumer is idle (the in-process one): the crash detector then sees each quote as it is
    published, not after the work already queued for the event loop."""

    def handle_at_once(self) -> None:
        """From now on, handle each message at once whenever the consumer is parked."""
        ...


@runtime_checkable
class Quiescent(Protocol):
    """A transport that can tell when nothing is left to deliver (the in-process one)."""

    def idle(self) -> bool:
        """True when every endpoint has handled all that was queued for it."""
        ...
