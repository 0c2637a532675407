"""The universal client: one object per engine instance for publish, subscribe and request/reply.

Topics under ``marketdata.`` go to the MarketData Bus, every other topic to the Engine Logic
Bus; which transports those are (in-process or Redis) is decided by the factory, so engine
code never changes between the embedded default and production.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, NamedTuple, Self

from fastapi import APIRouter

from starmesh.bus.http import HttpAuth, MessagesEndpoint
from starmesh.bus.redis import RedisTransport
from starmesh.bus.transport import (
    Endpoint,
    HandlesAtOnce,
    PlansAhead,
    Quiescent,
    Transport,
    TransportHealth,
    address_of,
)
from starmesh.client.answers import reply_of
from starmesh.client.dispatch import DeliveryObserver, Dispatcher
from starmesh.client.envelopes import Envelopes, PayloadLike
from starmesh.client.failover import MeshFailover
from starmesh.client.health import instance_health
from starmesh.client.once import HandledOnce
from starmesh.client.posts import Posts
from starmesh.client.receiver import HttpReceiver, http_inlet
from starmesh.client.subscription import Handler, Subscription
from starmesh.core.clock import now_ns
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType, MessagePriority, MessageType
from starmesh.core.errors import (
    BusUnavailableError,
    MessageBusError,
    MessageEncodeError,
    NoResponderError,
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

__all__ = ["BusConnection", "Connector", "DeliveryObserver", "MessageBusClient", "Responder"]

logger = logging.getLogger("starmesh.client")

Responder = Callable[[Message], "Awaitable[PayloadLike | None] | PayloadLike | None"]
"""Receives a request and returns the reply payload (a dict, a Payload struct or None)."""


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
        self._dispatcher = Dispatcher(self.address, self._handlers, self._pending)
        self._posts = Posts(self.address)
        self._running = False
        self._lifecycle = asyncio.Lock()
        self._published = 0
        self._expired = 0
        self._settling: tuple[BusConnection, list[Quiescent]] | None = None
        self._answer_failures = 0
        self._auth = HttpAuth.from_settings(settings)
        self._failover: MeshFailover | None = None
        self._receiver: HttpReceiver | None = None
        self._http_endpoint: MessagesEndpoint | None = None
        self._http_url: str | None = None

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
            if isinstance(connection.logic, RedisTransport):
                # Failover needs a durable bus to fail over from; the embedded bus has none.
                if self._http_url is not None:
                    connection.logic.advertise(self.address, self._http_url)
                    # Two paths can now bring the same message (HTTP, then a replay through
                    # Redis): remember handled ids across both. Over Redis alone the
                    # endpoint's own window does, at no extra cost per message.
                    self._dispatcher.once = HandledOnce(self._settings.dedup_window)
                self._failover = MeshFailover(connection.logic, self._settings, self._auth)
                await self._failover.start()
            if self._receiver is not None:
                self._receiver.start()
            dispatcher = self._dispatcher
            self._logic_endpoint = await connection.logic.open_endpoint(
                self.engine, self.instance, dispatcher.deliver, deliver_run=dispatcher.deliver_run
            )
            if connection.marketdata is connection.logic:
                self._md_endpoint = self._logic_endpoint
            else:
                self._md_endpoint = await connection.marketdata.open_endpoint(
                    self.engine,
                    self.instance,
                    dispatcher.deliver,
                    deliver_run=dispatcher.deliver_run,
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
            if self._receiver is not None:
                await self._receiver.close()
            while self._answering:  # concurrent answers still need the transports to reply
                await asyncio.gather(*self._answering, return_exceptions=True)
            await self._posts.drain()  # what handlers posted reaches the bus (or the outbox)
            if self._failover is not None:
                await self._failover.close(self._settings.stop_timeout_s)
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

    @property
    def marketdata_transport(self) -> Transport | None:
        """What carries this client's market data (None until started)."""
        return None if self._connection is None else self._connection.marketdata

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
            marketdata = connection.marketdata
            if isinstance(marketdata, RedisTransport):
                # A market-data update is superseded by the next: never worth a long wait (the
                # hub answers its callers after distributing), and none while Redis is away.
                if not marketdata.is_reachable:
                    raise BusUnavailableError(f"the MarketData Bus is unreachable: {topic!r}")
                await marketdata.publish(message, timeout=self._settings.failover_after_s)
            else:
                await marketdata.publish(message)
        elif self._failover is not None:
            await self._failover.publish(message)  # Redis, else HTTP or the outbox
        else:
            await connection.logic.publish(message)
        self._published += 1
        return message.id

    def post(
        self,
        topic: str,
        payload: PayloadLike | None = None,
        *,
        priority: MessagePriority | int | str = MessagePriority.NORMAL,
        ts_event: int | None = None,
    ) -> asyncio.Future[str]:
        """Publish without waiting for the bus to take it: over Redis the message joins the
        publisher's next batch in this call, and the caller goes on.

        For a handler of market data whose next update must not wait for this publish's
        round trip (on the embedded bus the publish is done when ``post`` returns, unless a
        subscriber's lane is full). A publish that fails is logged and counted
        (``post_failures``); ``stop()`` waits for every post. Posts keep the order they were
        made in: one that has to wait before it is queued (a full lane in process, the
        outbox while Redis is away) holds the posts after it. A ``publish`` is not held: it
        may overtake such a post. Not for a handler of the inbox: its message is
        acknowledged once the handler returns, so a crash before the post reached Redis
        would lose what redelivery would have redone.
        """
        self._require_running("post")
        # The first step runs now: it encodes, routes and queues the commands in the
        # publisher's batch (on the embedded bus, delivers), so posts keep publish order.
        return self._posts.start(
            self.publish(topic, payload, priority=priority, ts_event=ts_event),
            name=f"post:{topic}",
            # Asked only behind a post under way: the rule costs nothing on the usual path.
            queued_at_once=self._posts.idle or self._queued_in_first_step(topic),
        )

    def _queued_in_first_step(self, topic: str) -> bool:
        """Whether a publish of ``topic`` now takes its place in its first step, whatever it
        waits for next: over Redis, straight into the publisher's batch. Not in process (a
        full lane makes it wait before it reaches every subscriber), nor into the outbox."""
        if not isinstance(self._transport_for(topic), RedisTransport):
            return False
        failover = self._failover
        return is_marketdata_topic(topic) or failover is None or failover.to_redis

    @property
    def keeps_snapshots(self) -> bool:
        """Whether the MarketData Bus keeps the hub's snapshot keys (Redis does, the
        embedded bus does not): :meth:`snapshots` is worth a call."""
        connection = self._connection
        return connection is not None and isinstance(connection.marketdata, RedisTransport)

    async def snapshots(self, topics: list[str]) -> list[Message | None]:
        """The latest market-data message of each topic (None where there is none), read
        from the MarketData Bus's snapshot keys in one round trip. Raises
        :class:`BusUnavailableError` while that bus is known to be unreachable, and
        :class:`MessageBusError` where it keeps no snapshots (see :attr:`keeps_snapshots`)
        or the read fails."""
        self._require_running("snapshots")
        connection = self._connection
        assert connection is not None  # running
        marketdata = connection.marketdata
        if not isinstance(marketdata, RedisTransport):
            raise MessageBusError(f"the {marketdata.name} keeps no market-data snapshots")
        if not marketdata.is_reachable:
            raise BusUnavailableError("the MarketData Bus is unreachable: no snapshots read")
        return await marketdata.snapshots(topics)

    def plan_ahead(self, topic: str) -> None:
        """Have the route of ``topic`` worked out now and kept current, for a rare topic whose
        first message must not wait (a crash alert). Nothing to do where the server routes
        (Redis); call it once started."""
        self._require_running("plan_ahead")
        transport = self._transport_for(topic)
        if isinstance(transport, PlansAhead):
            transport.plan_ahead(topic)

    def handle_market_data_at_once(self) -> None:
        """Have each market-data update handled in the hub's turn whenever this client is
        idle, rather than queued behind the work already waiting for the event loop: for an
        engine whose every quote may be urgent (Risk's crash detector) and whose handler is
        quick, since the hub pays for it. Only where market data has an in-process endpoint
        of its own (the embedded bus); over Redis nothing changes. Call it once started."""
        self._require_running("handle_market_data_at_once")
        # As an object: mypy cannot intersect the Endpoint and HandlesAtOnce protocols, and
        # would call the branch unreachable.
        endpoint: object = self._md_endpoint
        if endpoint is not self._logic_endpoint and isinstance(endpoint, HandlesAtOnce):
            endpoint.handle_at_once()

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
                    except Exception:
                        # Acknowledged already: nobody retries it, so it must not vanish.
                        self._answer_failures += 1
                        logger.exception("failed to answer %r (request %s)", topic, request.id)
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
            transport = self._transport_for(topic)
            if isinstance(transport, RedisTransport):
                # Requests do not fail over (the reply could not come back): fail fast instead.
                settings = self._settings
                within = min(settings.failover_after_s, settings.publish_timeout)
                routed = await transport.publish(message, timeout=within)
            else:
                routed = await transport.publish(message)
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

    @property
    def marketdata_pipelined(self) -> bool:
        """Whether market-data publishes awaited side by side still reach the bus in the
        order they were made: on Redis each is queued for the next round trip before its
        first await. (The embedded bus may park a publish on a full inbox, letting a later
        one pass it.)"""
        connection = self._connection
        return connection is not None and isinstance(connection.marketdata, RedisTransport)

    @property
    def can_settle(self) -> bool:
        """Whether :meth:`settle` works here: the buses are in-process."""
        return bool(self._quiescent())

    async def settle(self) -> None:
        """Wait until the in-process buses have delivered everything, and every handler that
        a delivery started has returned: a backtest's step, or a stop with nothing in flight.
        Raises :class:`MessageBusError` on a server bus, which cannot tell.
        """
        transports = self._quiescent()
        if not transports:
            raise MessageBusError(f"{self.address}: only the embedded bus can settle")
        # Idleness is a state of every consumer task at once, with no one event to wait on:
        # look again after each turn of the loop.
        while not all(t.idle() for t in transports):  # noqa: ASYNC110
            await asyncio.sleep(0)

    def _quiescent(self) -> list[Quiescent]:
        """The buses if every one can tell it is idle, else none. Found once per connection:
        an isinstance against a Protocol costs tens of microseconds, and a backtest settles
        after every event."""
        connection = self._connection
        if connection is None:
            return []
        settling = self._settling
        if settling is None or settling[0] is not connection:
            buses = list(dict.fromkeys(connection[:2]))
            quiescent: list[Quiescent] = [t for t in buses if isinstance(t, Quiescent)]
            settling = (connection, quiescent if len(quiescent) == len(buses) else [])
            self._settling = settling
        return settling[1]

    def observe(self, observer: DeliveryObserver | None) -> None:
        """Call ``observer(message, pattern)`` before the handlers of every delivered message
        (not replies); None stops it. One observer at a time: it must be quick and not raise.
        """
        self._dispatcher.observer = observer

    def http_router(self) -> APIRouter:
        """``POST /v1/messages`` for this instance, to include in the engine's FastAPI app.

        Call it before ``start``: the instance then registers the URL where it serves
        (``STARMESH_HTTP_ADVERTISE_URL``, else ``http://STARMESH_HTTP_HOST:port``), and
        publishers deliver to it over HTTP while Redis is down. Messages arriving this way
        reach the same handlers; a copy of one already handled is dropped by its id.
        """
        if self._http_endpoint is None:
            settings = self._settings
            dispatcher = self._dispatcher
            self._receiver, self._http_endpoint = http_inlet(
                self.engine,
                dispatcher.deliver,
                seen=lambda message_id: (
                    dispatcher.once is not None and dispatcher.once.seen(message_id)
                ),
                settings=settings,
                auth=self._auth,
            )
            self._http_url = (
                settings.http_advertise_url or f"http://{settings.http_host}:{self.port}"
            )
            connection = self._connection
            if self._running and connection is not None:
                self._receiver.start()
                if isinstance(connection.logic, RedisTransport):  # from the next heartbeat on
                    connection.logic.advertise(self.address, self._http_url)
                    dispatcher.once = HandledOnce(settings.dedup_window)
        return self._http_endpoint.router

    def listening_on(self, port: int) -> None:
        """The engine's HTTP face is bound to ``port`` (it asked for any free one, port 0):
        advertise that port, unless ``STARMESH_HTTP_ADVERTISE_URL`` says otherwise."""
        self.port = port
        if self._http_endpoint is None or self._settings.http_advertise_url:
            return
        self._http_url = f"http://{self._settings.http_host}:{port}"
        connection = self._connection
        if (
            self._running
            and connection is not None
            and isinstance(connection.logic, RedisTransport)
        ):
            connection.logic.advertise(self.address, self._http_url)

    @property
    def http_auth(self) -> HttpAuth:
        """Who may call this engine's HTTP endpoints (``STARMESH_HTTP_TOKEN[S]``); an engine's
        app puts ``Depends(client.http_auth.dependency())`` on all its routes."""
        return self._auth

    def failover_status(self) -> dict[str, Any]:
        """Paths (bus, HTTP) with their state, latencies and errors; the active route; the
        outbox depth; what arrived over HTTP. Empty on the embedded bus (nothing to fail over)."""
        status: dict[str, Any] = {}
        if self._failover is not None:
            status.update(self._failover.status())
        once = self._dispatcher.once
        if once is not None:
            status["duplicates_dropped"] = once.duplicates
        if self._http_endpoint is not None and self._receiver is not None:
            status["http_in"] = {**self._http_endpoint.counts, **self._receiver.counts}
        return status

    async def health_report(self) -> dict[str, Any]:
        """What ``/health`` shows of this instance: its transports, its failover paths
        (state, latencies, errors), the active route, the outbox depth and the dead letters.
        ``status`` is ``ok``, ``degraded`` (a path down, messages waiting or failing over) or
        ``down`` (not running)."""
        connection = self._connection
        transports = list({id(t): t for t in connection[:2]}.values()) if connection else []
        local = len(self._receiver.dead_letters) if self._receiver is not None else 0
        return await instance_health(
            self.engine, self.instance, self._running, transports, self.failover_status(),
            local_dead_letters=local, timeout=self._settings.failover_after_s,
        )  # fmt: skip

    def health(self) -> list[TransportHealth]:
        if self._connection is None:
            return []
        transports = {id(t): t for t in self._connection[:2]}
        return [t.health() for t in transports.values()]

    def stats(self) -> dict[str, int]:
        return {
            "published": self._published,
            "received": self._dispatcher.received,
            "unhandled": self._dispatcher.unhandled,
            "handler_failures": sum(s.failures for s in self.subscriptions()),
            "late_replies": self._dispatcher.late_replies,
            "expired_requests": self._expired,
            "answer_failures": self._answer_failures,
            "post_failures": self._posts.failures,
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
        if self._receiver is not None:
            letters.extend(self._receiver.dead_letters)
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

    async def _answer(self, request: Message, responder: Responder) -> None:
        if request.reply_to is None:
            self._dispatcher.unhandled += 1
            logger.warning("%r was published, not requested: it has no reply_to", request.topic)
            return
        if request.expired(now_ns()):
            self._expired += 1  # the requester has given up; answering would be wasted work
            return
        expose = self._settings.expose_errors
        reply = await reply_of(request, responder, self._envelopes, expose_errors=expose)
        transport = self._transport_for(request.topic)
        try:
            delivered = await transport.send(request.reply_to, reply)
        except MessageEncodeError as exc:
            error = ErrorInfo(code="MessageEncodeError", message=str(exc))
            delivered = await transport.send(
                request.reply_to, self._envelopes.reply(request, MessageType.ERROR, error)
            )
        if not delivered:
            self._dispatcher.late_replies += 1


def _expire(future: asyncio.Future[Message]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
