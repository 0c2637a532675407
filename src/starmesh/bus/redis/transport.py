"""The production transport: Redis Streams (see docs/wire-format.md for the layout)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from starmesh.bus.redis.endpoint import RedisEndpoint
from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.publisher import NETWORK_ERRORS, Outgoing, Publisher
from starmesh.bus.redis.registry import REGISTER_SCRIPT, RoutingTable, member_value
from starmesh.bus.redis.replies import as_bytes, entries
from starmesh.bus.redis.resp import XaddPacker, pack
from starmesh.bus.redis.tasks import cancel_and_wait
from starmesh.bus.transport import (
    DeadLetter,
    DeliveryHandler,
    TransportHealth,
    address_of,
    validate_instance,
)
from starmesh.core.codec import MessageCodec
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.core.errors import BusUnavailableError, MessageBusError, MessageDecodeError
from starmesh.core.message import Message
from starmesh.core.routing import MARKETDATA_BROADCAST_PATTERNS
from starmesh.core.topics import TopicMatcher

__all__ = ["RedisTransport", "redact_url"]

logger = logging.getLogger(__name__)

_KEEPALIVE: dict[int, int] = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}
"""Probe an idle connection after 5 s, every 2 s, give up after 3 misses."""


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisTransport:
    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        settings: Settings | None = None,
        broadcast_patterns: Sequence[str] = MARKETDATA_BROADCAST_PATTERNS,
    ) -> None:
        self.url = url
        self.settings = settings = settings or Settings()
        self._name = name or f"redis:{redact_url(url)}"
        self.keys = Keys(settings.key_prefix)
        self.codec = MessageCodec(settings.max_message_bytes)
        self.broadcast_patterns = tuple(broadcast_patterns)
        self._broadcast = TopicMatcher[bool]()
        for pattern in self.broadcast_patterns:
            self._broadcast.add(pattern, True)
        # socket_timeout=None, explicitly (redis-py's default is 5 s): with a timeout, every
        # reply is read inside an asyncio.timeout and every send goes through
        # asyncio.wait_for, which costs CPU per reply and, on Python 3.11, can swallow a
        # task's cancellation. A dead peer is noticed by TCP keepalive instead (about 11 s);
        # publishes keep their own deadline. A Unix socket needs no keepalive (nor takes
        # one): the kernel closes it when the server dies.
        keepalive: dict[str, Any] = (
            {}
            if urlsplit(url).scheme == "unix"
            else {"socket_keepalive": True, "socket_keepalive_options": _KEEPALIVE}
        )
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=False,
            socket_timeout=None,
            socket_connect_timeout=2.0,
            health_check_interval=30,
            **keepalive,
        )
        self._routing = RoutingTable()
        self._publisher = Publisher(
            self.client,
            self.keys,
            self._routing,
            self._refresh_routing,
            lane_maxlen=settings.lane_maxlen,
            publish_timeout=settings.publish_timeout,
            max_backoff=settings.reconnect_max_backoff_s,
            on_reachable=self.reachable,
        )
        self._broadcast_xadd = XaddPacker(self.keys.broadcast, settings.broadcast_maxlen)
        self._reply_packers: OrderedDict[str, XaddPacker] = OrderedDict()
        self._register = self.client.register_script(REGISTER_SCRIPT)
        self._endpoints: dict[str, RedisEndpoint] = {}
        self._control: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._running = False
        self._reachable = True
        self._last_error = ""
        self._counts: dict[str, int] = {"published": 0, "unrouted": 0, "undeliverable": 0}
        self._retired: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self._name

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        try:
            await self.client.ping()
            await self._refresh_routing()
        except NETWORK_ERRORS as exc:
            await self.client.aclose()
            raise BusUnavailableError(
                f"cannot reach Redis at {redact_url(self.url)}: {exc}. Is redis-server running "
                "there (STARMESH_BUS_URL / STARMESH_MARKETDATA_URL)?"
            ) from exc
        self._control = asyncio.create_task(self._follow_control(), name=f"{self._name}:control")
        self._running = True

    async def stop(self) -> None:
        if not self._running:
            return
        for endpoint in list(self._endpoints.values()):
            await endpoint.close()
        self._running = False
        await self._publisher.close()
        for task in (self._control, self._refreshing):
            if task is not None:
                await cancel_and_wait(task)
        await self.client.aclose()

    async def open_endpoint(
        self, engine: EngineType, instance: str, deliver: DeliveryHandler
    ) -> RedisEndpoint:
        self._require_running()
        address = address_of(engine, validate_instance(instance))
        if address in self._endpoints:
            raise MessageBusError(f"instance {address} is already attached to {self._name!r}")
        endpoint = RedisEndpoint(self, engine, instance, deliver)
        await endpoint.open()
        self._endpoints[address] = endpoint
        return endpoint

    # --- publishing --------------------------------------------------------------------------

    async def publish(self, message: Message) -> int:
        self._require_running()
        data = self.codec.encode(message)
        loop = asyncio.get_running_loop()
        topic = message.topic
        self._counts["published"] += 1
        if self._broadcast.match(topic):
            commands = [
                self._broadcast_xadd(data),
                pack(b"SET", self.keys.snapshot(topic).encode(), data),
            ]
            await self._publisher.submit(Outgoing(commands, loop.create_future()))
            return 1
        routing = self._routing
        routed_at = routing.version
        engines = routing.engines(topic)
        priority = message.priority
        commands = [self._publisher.inbox_xadd(e, priority, data) for e in engines]
        outgoing = Outgoing(
            commands, loop.create_future(), topic, engines, priority, data, routed_at
        )
        delivered = await self._publisher.submit(outgoing)
        if delivered == 0:
            self._counts["unrouted"] += 1
        return delivered

    async def send(self, address: str, message: Message) -> bool:
        self._require_running()
        data = self.codec.encode(message)
        engine_name, _, instance = address.partition("/")
        try:
            key = self.keys.replies(EngineType(engine_name), instance)
        except ValueError:
            raise MessageBusError(f"not an instance address: {address!r}") from None
        packer = self._reply_packers.get(key)
        if packer is None:
            packer = self._reply_packers[key] = XaddPacker(
                key, self.settings.reply_maxlen, nomkstream=True
            )
            if len(self._reply_packers) > 4_096:
                self._reply_packers.popitem(last=False)
        command = packer(data)
        future = asyncio.get_running_loop().create_future()
        delivered = await self._publisher.submit(Outgoing([command], future))
        if not delivered:
            self._counts["undeliverable"] += 1  # that instance is gone
        return bool(delivered)

    async def acknowledge(self, commands: list[bytes]) -> None:
        """Send packed XACKs with the next publish batch (one round trip for replies and acks).

        Raises BusUnavailableError when Redis stays unreachable for the publish timeout, and
        MessageBusError when it refuses one (a group lost in a restart).
        """
        future = asyncio.get_running_loop().create_future()
        await self._publisher.submit(Outgoing(commands, future))

    # --- snapshots and dead letters ----------------------------------------------------------

    async def snapshot(self, topic: str) -> Message | None:
        """The latest message broadcast on ``topic`` (a market-data topic), if any."""
        data = await self.client.get(self.keys.snapshot(topic))
        return None if data is None else self.codec.decode(as_bytes(data))

    async def dead_letters(self, engine: EngineType, limit: int = 100) -> list[DeadLetter]:
        found = entries(await self.client.xrevrange(self.keys.dead_letters(engine), count=limit))
        letters = []
        for _entry_id, stored in found:
            fields = stored or {}
            raw = fields.get(b"m", b"")
            try:
                message: Message | None = self.codec.decode(raw)
            except MessageDecodeError:
                message = None
            letters.append(
                DeadLetter(
                    engine=engine,
                    reason=fields.get(b"reason", b"").decode(errors="replace"),
                    ts_ns=int(fields.get(b"ts_ns", b"0")),
                    message=message,
                    raw=raw,
                )
            )
        return letters

    # --- health and counts -------------------------------------------------------------------

    def health(self) -> TransportHealth:
        if not self._running:
            return TransportHealth(transport=self._name, healthy=False, detail="stopped")
        if not self._reachable:
            detail = f"unreachable: {self._last_error}"
            return TransportHealth(transport=self._name, healthy=False, detail=detail)
        detail = f"{len(self._endpoints)} endpoints, registry v{self._routing.version}"
        return TransportHealth(transport=self._name, healthy=True, detail=detail)

    def stats(self) -> dict[str, int]:
        totals = dict(self._counts)
        for source in [self._retired, *(e.stats() for e in self._endpoints.values())]:
            for key, value in source.items():
                totals[key] = totals.get(key, 0) + value
        totals["endpoints"] = len(self._endpoints)
        totals["publish_batches"] = self._publisher.batches
        totals["routing_fixups"] = self._publisher.fixups
        return totals

    # --- used by endpoints -------------------------------------------------------------------

    def is_broadcast(self, topic: str) -> bool:
        return bool(self._broadcast.match(topic))

    def reachable(self, ok: bool, error: str) -> None:
        if ok != self._reachable:
            if ok:
                logger.info("%s reachable again", self._name)
            else:
                logger.warning("%s unreachable: %s", self._name, error)
        self._reachable = ok
        if error:
            self._last_error = error

    def count(self, what: str) -> None:
        self._counts[what] = self._counts.get(what, 0) + 1

    def forget_endpoint(self, endpoint: RedisEndpoint) -> None:
        if self._endpoints.get(endpoint.address) is endpoint:
            del self._endpoints[endpoint.address]
            for key, value in endpoint.stats().items():
                if key != "queued":
                    self._retired[key] = self._retired.get(key, 0) + value

    async def register(self, engine: EngineType, instance: str, patterns: list[str]) -> None:
        """Record ``patterns`` as this instance's subscriptions (empty: none) and announce it."""
        value = member_value(patterns) if patterns else b""
        version = await self._register(
            keys=[self.keys.registry_members, self.keys.registry, self.keys.registry_version],
            args=[
                engine.value,
                address_of(engine, instance),
                value,
                int(time.time() * 1000),
                int(self.settings.member_ttl_s * 1000),
                self.keys.control,
            ],
        )
        if int(version) != self._routing.version:
            await self._refresh_routing()

    # --- routing table -----------------------------------------------------------------------

    async def _refresh_routing(self) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.registry)
            pipe.get(self.keys.registry_version)
            registry, version = await pipe.execute()
        self._routing.load(registry, int(version or 0))

    async def _follow_control(self) -> None:
        """Refresh the routing table whenever an engine announces a subscription change."""
        backoff = 0.05
        while True:
            pubsub: PubSub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.keys.control)
                await self._refresh_routing()  # whatever changed while we were not listening
                backoff = 0.05
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._schedule_refresh()
            except NETWORK_ERRORS as exc:
                self.reachable(False, f"control channel: {exc}")
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self.settings.reconnect_max_backoff_s)

    def _schedule_refresh(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh_routing()
        except NETWORK_ERRORS as exc:
            self.reachable(False, f"registry refresh: {exc}")

    def _require_running(self) -> None:
        if not self._running:
            raise MessageBusError(f"transport {self._name!r} is not running")

    def __repr__(self) -> str:
        return f"RedisTransport({redact_url(self.url)!r})"
