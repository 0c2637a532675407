"""The universal client: one object per engine instance for publish, subscribe and request/reply.

Topics under ``marketdata.`` go to the MarketData Bus, every other topic to the Engine Logic
Bus; which transports those are (in-process or Redis) is decided by the factory, so engine
code never changes between the embedded default and production.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, NamedTuple, Self

from starmesh.bus.transport import Endpoint, Transport, TransportHealth, address_of
from starmesh.client.envelopes import Envelopes, PayloadLike
from starmesh.client.subscription import Handler, Subscription
from starmesh.core.clock import now_ns
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType, MessagePriority, MessageType
from starmesh.core.errors import (
    HandlerError,
    MessageBusError,
    MessageEncodeError,
    NoResponderError,
    NotHandledError,
    RemoteError,
    RequestTimeout,
)
from starmesh.core.message import Message
from starmesh.core.payloads import ErrorInfo
from starmesh.core.routing import (
    MARKETDATA_PREFIX,
    is_marketdata_topic,
    pattern_buses,
)
from starmesh.core.topics import TopicMatcher, validate_pattern

__all__ = ["BusConnection", "Connector", "MessageBusClient", "Responder"]

logger = logging.getLogger("starmesh.client")

Responder = Callable[[Message], "Awaitable[PayloadLike | None] | PayloadLike | None"]
"""Receives a request and returns the reply payload (a dict, a Payload struct or None)."""

_REPLY_TYPES = frozenset({MessageType.REPLY, MessageType.ERROR})


class BusConnection(NamedTuple):
    logic: Transport
    marketdata: Transport
    owned: bool
    """True when the client started these transports and must stop them."""


Connector = Callable[[], Awaitable[BusConnection]]


class MessageBusClient:
    """Create with :func:`starmesh.create_messagebus_client`; use as ``async with client:``."""

    def __init__(
        self,
        engine: EngineType,
        port: int,
        *,
        instance: str,
        settings: Settings,
        connect: Connector,
    ) -> None:
        self.engine = engine
        self.port = port
        self.instance = instance
        self.address = address_of(engine, instance)
        self._settings = settings
        self._connect = connect
        self._connection: BusConnection | None = None
        self._logic_endpoint: Endpoint | None = None
        self._md_endpoint: Endpoint | None = None
        self._handlers: TopicMatcher[Subscription] = TopicMatcher()
        self._subscriptions: dict[Subscription, None] = {}
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._envelopes = Envelopes(engine, instance)
        self._running = False
        self._lifecycle = asyncio.Lock()
        self._published = 0
        self._received = 0
        self._unhandled = 0
        self._late_replies = 0
        self._expired = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._lifecycle:
            if self._running:
                return
            connection = await self._connect()
            if connection.owned:
                await connection.logic.start()
                if connection.marketdata is not connection.logic:
                    await connection.marketdata.start()
            self._connection = connection
            self._logic_endpoint = await connection.logic.open_endpoint(
                self.engine, self.instance, self._deliver
            )
            if connection.marketdata is connection.logic:
                self._md_endpoint = self._logic_endpoint
            else:
                self._md_endpoint = await connection.marketdata.open_endpoint(
                    self.engine, self.instance, self._deliver
                )
            # Subscriptions made before start: their handlers were ready before anything
            # could arrive, so a backlog waiting for this engine finds them.
            for pattern in self._handlers.patterns():
                for endpoint in self._endpoints_for(pattern):
                    await endpoint.subscribe(pattern)
            self._running = True

    async def stop(self) -> None:
        """Stop receiving, handle what is already queued, then detach. Idempotent."""
        async with self._lifecycle:
            if not self._running or self._connection is None:
                return
            connection = self._connection
            endpoints = {id(e): e for e in (self._logic_endpoint, self._md_endpoint) if e}
            for endpoint in endpoints.values():
                await endpoint.close()
            while self._answering:  # concurrent answers still need the transports to reply
                await asyncio.gather(*self._answering, return_exceptions=True)
            self._running = False
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(MessageBusError(f"{self.address} stopped"))
            if connection.owned:
                await connection.logic.stop()
                if connection.marketdata is not connection.logic:
                    await connection.marketdata.stop()

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
    def running(self) -> bool:
        return self._running

    # --- publish -----------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: PayloadLike | None = None,
        *,
        priority: MessagePriority | int | str = MessagePriority.NORMAL,
        message_type: MessageType | str | None = None,
        ts_event: int | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Publish ``payload`` on ``topic`` to every subscribing engine; returns the message id.

        ``message_type`` defaults to what a typed payload implies, else what the topic implies
        (``risk.alert.*`` -> RISK_ALERT), else EVENT. A topic nobody subscribes to is not an
        error: the transport counts it as unrouted.
        """
        self._require_running("publish")
        message = self._envelopes.message(
            topic, payload, priority, message_type, ts_event, correlation_id
        )
        connection = self._connection
        assert connection is not None  # running
        if topic.startswith(MARKETDATA_PREFIX):
            await connection.marketdata.publish(message)
        else:
            await connection.logic.publish(message)
        self._published += 1
        return message.id

    # --- subscribe ---------------------------------------------------------------------------

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call ``handler(message)`` for every message whose topic matches ``pattern``.

        Patterns are globs: ``risk.alert.*`` (``*`` spans dots too), ``?`` one character.
        Subscribing before ``start`` is best for an engine that may restart with a backlog
        waiting: the handlers are in place before the first message is fetched.
        """
        validate_pattern(pattern)
        subscription = Subscription(pattern, handler)
        self._handlers.add(pattern, subscription)
        self._subscriptions[subscription] = None
        if self._running:
            for endpoint in self._endpoints_for(pattern):
                await endpoint.subscribe(pattern)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        if not self._handlers.remove(subscription.pattern, subscription):
            return
        del self._subscriptions[subscription]
        if subscription.pattern not in self._handlers.patterns() and self._running:
            for endpoint in self._endpoints_for(subscription.pattern):
                await endpoint.unsubscribe(subscription.pattern)

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    # --- request / reply ---------------------------------------------------------------------

    async def serve(
        self, topic: str, responder: Responder, *, concurrency: int = 1
    ) -> Subscription:
        """Answer requests on ``topic`` (a pattern is allowed) with ``responder(request)``.

        The responder's return value is the reply payload; if it raises, the requester gets a
        :class:`RemoteError` with the exception's type and message.

        With ``concurrency`` above 1, up to that many requests are answered at once (a server
        whose answers wait on I/O); the instance's other handlers keep their turn-taking.
        A request is then acknowledged when its answer starts: if the instance dies, the
        requester times out rather than the request being answered twice.
        """
        if not callable(responder):
            raise TypeError(f"responder for {topic!r} must be callable")
        if concurrency < 1:
            raise MessageBusError(f"concurrency must be at least 1, got {concurrency}")
        name = getattr(responder, "__qualname__", "responder")
        if concurrency == 1:

            async def answer(request: Message) -> None:
                await self._answer(request, responder)

        else:
            slots = asyncio.Semaphore(concurrency)

            async def answer(request: Message) -> None:
                await slots.acquire()  # full: the endpoint waits, which back-pressures the queue

                async def answer_and_release() -> None:
                    try:
                        await self._answer(request, responder)
                    finally:
                        slots.release()

                task = asyncio.create_task(answer_and_release(), name=f"answer:{name}")
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)

        answer.__qualname__ = name
        return await self.subscribe(topic, answer)

    async def request(
        self,
        topic: str,
        payload: PayloadLike | None = None,
        *,
        timeout: float | None = None,
        priority: MessagePriority | int | str = MessagePriority.HIGH,
    ) -> Message:
        """Send a request and wait for its reply; the reply's ``correlation_id`` is the request id.

        Raises :class:`NoResponderError` at once if no engine serves ``topic``,
        :class:`RequestTimeout` (a ``TimeoutError``) if no reply comes within ``timeout``
        seconds, and :class:`RemoteError` if the responder failed.
        """
        timeout = self._settings.request_timeout if timeout is None else timeout
        if timeout <= 0:
            raise MessageBusError(f"request timeout must be positive, got {timeout}")
        deadline = now_ns() + int(timeout * 1e9)
        self._require_running("publish")
        message = self._envelopes.message(
            topic, payload, priority, MessageType.REQUEST, None, None, self.address, deadline
        )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()
        self._pending[message.id] = future
        try:
            routed = await self._transport_for(topic).publish(message)
            self._published += 1
            if routed == 0:
                raise NoResponderError(
                    f"no engine serves {topic!r}; start the engine that calls serve({topic!r})"
                )
            # A timer on the future, not asyncio.timeout(): half the cost on the request path.
            expiry = loop.call_later(timeout, _expire, future)
            try:
                reply = await future
            finally:
                expiry.cancel()
        except TimeoutError:
            raise RequestTimeout(
                f"no reply to {topic!r} within {timeout:g} s (request {message.id})"
            ) from None
        finally:
            self._pending.pop(message.id, None)
        if reply.type is MessageType.ERROR:
            info = reply.payload
            if isinstance(info, ErrorInfo):
                raise RemoteError(info.code, info.message)
            raise RemoteError("error", str(info))
        return reply

    # --- introspection -----------------------------------------------------------------------

    def health(self) -> list[TransportHealth]:
        if self._connection is None:
            return []
        transports = {id(t): t for t in self._connection[:2]}
        return [t.health() for t in transports.values()]

    def stats(self) -> dict[str, int]:
        return {
            "published": self._published,
            "received": self._received,
            "unhandled": self._unhandled,
            "handler_failures": sum(s.failures for s in self.subscriptions()),
            "late_replies": self._late_replies,
            "expired_requests": self._expired,
            "pending_requests": len(self._pending),
        }

    async def dead_letters(self, limit: int = 100) -> list[Any]:
        """This engine type's dead letters on both buses, newest first."""
        if self._connection is None:
            return []
        transports = {id(t): t for t in self._connection[:2]}
        letters = []
        for transport in transports.values():
            letters.extend(await transport.dead_letters(self.engine, limit))
        letters.sort(key=lambda letter: letter.ts_ns, reverse=True)
        return letters[:limit]

    # --- internals ---------------------------------------------------------------------------

    def _require_running(self, action: str) -> None:
        if not self._running:
            raise MessageBusError(
                f"cannot {action}: {self.address} is not started; "
                "use 'async with client:' or 'await client.start()' first"
            )

    def _transport_for(self, topic: str) -> Transport:
        connection = self._connection
        if connection is None:
            raise MessageBusError(f"{self.address} has never been started")
        return connection.marketdata if is_marketdata_topic(topic) else connection.logic

    def _endpoints_for(self, pattern: str) -> list[Endpoint]:
        on_logic, on_marketdata = pattern_buses(pattern)
        endpoints: list[Endpoint] = []
        if on_logic and self._logic_endpoint is not None:
            endpoints.append(self._logic_endpoint)
        # One server may carry both buses: then it is one endpoint, subscribed once.
        if on_marketdata and self._md_endpoint is not None and self._md_endpoint not in endpoints:
            endpoints.append(self._md_endpoint)
        return endpoints

    def _deliver(self, message: Message) -> Awaitable[None] | None:
        """The endpoints' callback: finishes synchronously unless a handler is async."""
        self._received += 1
        if message.correlation_id is not None and message.type in _REPLY_TYPES:
            # A reply is for the request waiting on it, never for handlers; so a transport
            # may deliver replies as they arrive, outside the turn-taking of handlers.
            future = self._pending.get(message.correlation_id)
            if future is not None:
                if not future.done():
                    future.set_result(message)
            else:
                self._late_replies += 1  # its request timed out; nobody waits any more
            return None
        subscriptions = self._handlers.match(message.topic)
        if not subscriptions:
            self._unhandled += 1
            raise NotHandledError(f"{self.address} has no handler for {message.topic!r}")
        failed: list[Subscription] = []
        for index, subscription in enumerate(subscriptions):
            outcome = subscription.invoke(message)
            if outcome is False:
                failed.append(subscription)
            elif outcome is not True:  # an async handler: the rest waits for it
                return self._dispatch_async(message, subscriptions, index, failed, outcome)
        if failed:
            raise _handler_error(message, failed)
        return None

    async def _dispatch_async(
        self,
        message: Message,
        subscriptions: tuple[Subscription, ...],
        start: int,
        failed: list[Subscription],
        started: Awaitable[None],
    ) -> None:
        """Carry on ``_deliver`` from ``subscriptions[start]``, whose handler gave ``started``."""
        outcome: bool | Awaitable[None] = started
        for index in range(start, len(subscriptions)):
            subscription = subscriptions[index]
            if index > start:
                outcome = subscription.invoke(message)
            ok = (
                outcome
                if isinstance(outcome, bool)
                else await subscription.finish(outcome, message)
            )
            if not ok:
                failed.append(subscription)
        if failed:
            raise _handler_error(message, failed)

    async def _answer(self, request: Message, responder: Responder) -> None:
        if request.reply_to is None:
            self._unhandled += 1
            logger.warning("%r was published, not requested: it has no reply_to", request.topic)
            return
        if request.expired(now_ns()):
            self._expired += 1  # the requester has given up; answering would be wasted work
            return
        try:
            result = responder(request)
            if inspect.isawaitable(result):
                result = await result
            reply = self._envelopes.reply(
                request, MessageType.REPLY, {} if result is None else result
            )
        except Exception as exc:
            logger.exception("responder for %r failed", request.topic)
            reply = self._envelopes.reply(
                request, MessageType.ERROR, ErrorInfo(code=type(exc).__name__, message=str(exc))
            )
        transport = self._transport_for(request.topic)
        try:
            delivered = await transport.send(request.reply_to, reply)
        except MessageEncodeError as exc:
            error = ErrorInfo(code="MessageEncodeError", message=str(exc))
            delivered = await transport.send(
                request.reply_to, self._envelopes.reply(request, MessageType.ERROR, error)
            )
        if not delivered:
            self._late_replies += 1


def _expire(future: asyncio.Future[Message]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _handler_error(message: Message, failed: list[Subscription]) -> HandlerError:
    errors = "; ".join(f"{s!r}: {s.last_error!r}" for s in failed)
    return HandlerError(f"{message.topic!r} ({message.id}): {errors}")
