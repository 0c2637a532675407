"""The production transport: Redis Streams (see docs/wire-format.md for the layout)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from starmesh.bus.redis.channel import ChannelEvent, channel_events
from starmesh.bus.redis.cluster import RedisClient, Topology
from starmesh.bus.redis.cluster_publisher import ClusterPublisher
from starmesh.bus.redis.cluster_raw import SlotCommands
from starmesh.bus.redis.connect import redact_url, redis_client
from starmesh.bus.redis.endpoint import RedisEndpoint
from starmesh.bus.redis.fence import FencedPublish
from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.publisher import (
    NETWORK_ERRORS,
    Outgoing,
    Publisher,
    PublisherOptions,
    ServerPublisher,
)
from starmesh.bus.redis.raw import Raw, RawCommands
from starmesh.bus.redis.registry import REGISTER_SCRIPT, RoutingTable, member_value
from starmesh.bus.redis.replies import as_bytes, entries
from starmesh.bus.redis.resp import XaddPacker, pack
from starmesh.bus.redis.tasks import cancel_and_wait
from starmesh.bus.transport import (
    DeadLetter,
    DeliveryHandler,
    RunDeliveryHandler,
    TransportHealth,
    address_of,
    validate_instance,
)
from starmesh.core.codec import MessageCodec
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.core.errors import (
    BusUnavailableError,
    ConfigurationError,
    MessageBusError,
    MessageDecodeError,
)
from starmesh.core.message import Message
from starmesh.core.routing import MARKETDATA_BROADCAST_PATTERNS
from starmesh.core.topics import TopicMatcher

__all__ = ["RedisTransport", "redact_url"]

logger = logging.getLogger(__name__)


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
        self._routing = RoutingTable()
        publishing = PublisherOptions(
            routing=self._routing,
            refresh_routing=self._refresh_routing,
            lane_maxlen=settings.lane_maxlen,
            publish_timeout=settings.publish_timeout,
            max_backoff=settings.reconnect_max_backoff_s,
            on_reachable=self.reachable,
        )
        self.client: RedisClient = redis_client(url, settings)
        self.topology: Topology | None = None
        """Where each slot lives, on a cluster (``redis+cluster://``); None on one server."""
        self._publisher: Publisher
        if isinstance(self.client, RedisCluster):
            self.topology = Topology(self.client)
            self._publisher = ClusterPublisher(
                self.topology,
                self.keys,
                wait_replicas=settings.redis_wait_replicas,
                wait_timeout_ms=settings.redis_wait_timeout_ms,
                **publishing,
            )
        else:
            self._publisher = ServerPublisher(self.client, self.keys, **publishing)
        self._broadcast_xadd = XaddPacker(self.keys.broadcast, settings.broadcast_maxlen)
        self._fenced: FencedPublish | None = None
        self._reply_packers: OrderedDict[str, XaddPacker] = OrderedDict()
        self._register = self.client.register_script(REGISTER_SCRIPT)
        self._endpoints: dict[str, RedisEndpoint] = {}
        self.http_urls: dict[str, str] = {}
        """Instance address -> its HTTP base URL, as registered (see ``advertise``)."""
        self._control: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._running = False
        self._reachable = True
        self._last_error = ""
        self._counts: dict[str, int] = {"published": 0, "unrouted": 0, "undeliverable": 0}
        self._snapshot_reader: Raw | None = None
        self._snapshot_lock = asyncio.Lock()
        self._retired: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self._name

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        try:
            await self._check_mode()
            await self._refresh_routing()
        except (*NETWORK_ERRORS, RedisClusterException) as exc:
            await self.client.aclose()
            if "not enabled" in str(exc):
                raise ConfigurationError(
                    f"{redact_url(self.url)} is not a Redis Cluster node: use redis:// for a "
                    "single server"
                ) from None
            raise BusUnavailableError(
                f"cannot reach Redis at {redact_url(self.url)}: {exc}. Is redis-server running "
                "there (STARMESH_BUS_URL / STARMESH_MARKETDATA_URL)?"
            ) from exc
        except ConfigurationError:
            await self.client.aclose()
            raise
        self._control = asyncio.create_task(self._follow_control(), name=f"{self._name}:control")
        self._running = True

    async def _check_mode(self) -> None:
        """A single-server URL must not name a cluster node (half the keys would answer
        MOVED); a cluster URL's nodes are checked as the slot map is read."""
        if self.topology is not None:
            await self.topology.ready()
            return
        assert isinstance(self.client, aioredis.Redis)
        try:
            info = await self.client.info("cluster")
        except ResponseError:
            return  # INFO not allowed (an ACL): the first MOVED would say it
        if info.get("cluster_enabled"):
            raise ConfigurationError(
                f"{redact_url(self.url)} is a Redis Cluster node: use "
                f"redis+cluster://{urlsplit(self.url).netloc.rpartition('@')[2]} (see README, "
                "Production)"
            )

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
        if self._snapshot_reader is not None:
            await self._snapshot_reader.close()
            self._snapshot_reader = None
        await self.client.aclose()

    async def open_endpoint(
        self,
        engine: EngineType,
        instance: str,
        deliver: DeliveryHandler,
        *,
        deliver_run: RunDeliveryHandler | None = None,
    ) -> RedisEndpoint:
        # ``deliver_run`` is not used: each entry is acked on its own, so handed over alone.
        self._require_running()
        address = address_of(engine, validate_instance(instance))
        if address in self._endpoints:
            raise MessageBusError(f"instance {address} is already attached to {self._name!r}")
        endpoint = RedisEndpoint(self, engine, instance, deliver)
        await endpoint.open()
        self._endpoints[address] = endpoint
        return endpoint

    # --- publishing --------------------------------------------------------------------------

    async def publish(self, message: Message, *, timeout: float | None = None) -> int:
        """Route and write ``message``; ``timeout`` (at most the publish timeout) is how long
        to keep trying while Redis is unreachable before BusUnavailableError.
        """
        self._require_running()
        data = self.codec.encode(message)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        topic = message.topic
        self._counts["published"] += 1
        if self._broadcast.match(topic):
            snapshot_key = self.keys.snapshot(topic).encode()
            fenced = self._fenced
            if fenced is None:
                commands = [self._broadcast_xadd(data), pack(b"SET", snapshot_key, data)]
            else:
                commands = [fenced(snapshot_key, data)]
            await self._publisher.submit(
                Outgoing(commands, loop.create_future(), deadline=deadline)
            )
            return 1
        routing = self._routing
        routed_at = routing.version
        engines = routing.engines(topic)
        priority = message.priority
        commands = [self._publisher.inbox_xadd(e, priority, data) for e in engines]
        outgoing = Outgoing(
            commands, loop.create_future(), topic, engines, priority, data, routed_at, deadline
        )
        delivered = await self._publisher.submit(outgoing)
        if delivered == 0:
            self._counts["unrouted"] += 1
        return delivered

    async def deliver_to(
        self, message: Message, engines: Sequence[EngineType], *, timeout: float | None = None
    ) -> int:
        """Write ``message`` to the inboxes of ``engines`` only, not routing it (a replay of
        what other paths could not deliver to exactly those engines); how many were written.
        """
        self._require_running()
        data = self.codec.encode(message)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        commands = [self._publisher.inbox_xadd(e, message.priority, data) for e in engines]
        return await self._publisher.submit(
            Outgoing(commands, loop.create_future(), deadline=deadline)
        )

    async def ping(self, timeout: float) -> bool:
        """Whether Redis answers within ``timeout`` seconds (a failover health check)."""
        try:
            async with asyncio.timeout(timeout):
                if isinstance(self.client, RedisCluster):  # every master, not one
                    await self.client.ping(target_nodes=RedisCluster.PRIMARIES)
                else:
                    await self.client.ping()
        except (*NETWORK_ERRORS, RedisClusterException, TimeoutError) as exc:
            self.reachable(False, f"ping: {exc}" if str(exc) else "ping timed out")
            return False
        return True

    def fence(self, value: bytes) -> None:
        """Write market data from now on only while the hub lease holds ``value``: each
        update checks it in the same script (``lease.py``); a lost lease makes Redis refuse
        the write with FENCED (a :class:`~starmesh.core.errors.FencedError`)."""
        self._fenced = FencedPublish(self.keys, value, self.settings.broadcast_maxlen)

    def raw_commands(self, key: str) -> Raw:
        """A connection of one's own for a hot loop on ``key`` (and the keys of its slot)."""
        if self.topology is not None:
            return SlotCommands(self.topology, key)
        assert isinstance(self.client, aioredis.Redis)
        return RawCommands(self.client)

    @property
    def routing(self) -> RoutingTable:
        """The last known registry: who subscribes to what, and their HTTP addresses."""
        return self._routing

    def advertise(self, address: str, http_url: str) -> None:
        """Publish ``http_url`` in the registry as where instance ``address`` serves HTTP
        (taken into account at its next registration or heartbeat)."""
        self.http_urls[address] = http_url

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
        (message,) = await self.snapshots([topic])
        return message

    async def snapshots(self, topics: Sequence[str]) -> list[Message | None]:
        """The latest message broadcast on each of ``topics``, in one round trip (``MGET``:
        the snapshot keys share the ``{md}`` hash tag, so a cluster serves them from one
        node). None where there is none, or where it does not decode (counted as
        ``snapshot_decode_errors``). BusUnavailableError when Redis cannot be reached,
        MessageBusError when it refuses (an ACL without read access to the keys)."""
        command = pack(b"MGET", *(self.keys.snapshot(topic).encode() for topic in topics))
        try:
            # A connection of its own, one read at a time: redis-py's command path cost as
            # much CPU as the rest of a get_data answered from here.
            async with self._snapshot_lock:
                if self._snapshot_reader is None:
                    self._snapshot_reader = self.raw_commands(self.keys.snapshot_pattern)
                values = await self._snapshot_reader.one(command)
        except NETWORK_ERRORS as exc:
            raise BusUnavailableError(f"could not read market-data snapshots: {exc}") from exc
        except (ResponseError, RedisClusterException) as exc:
            raise MessageBusError(f"Redis refused the snapshot read: {exc}") from exc
        found: list[Message | None] = []
        for data in values:
            message = None
            if data is not None:
                try:
                    message = self.codec.decode(as_bytes(data))
                except MessageDecodeError:
                    self.count("snapshot_decode_errors")
            found.append(message)
        return found

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

    async def dead_letter_count(self, engine: EngineType) -> int:
        """How many dead letters ``engine`` has (XLEN of its DLQ stream)."""
        return int(await self.client.xlen(self.keys.dead_letters(engine)))

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
        totals.update(self._publisher.counts())
        return totals

    # --- used by endpoints -------------------------------------------------------------------

    @property
    def is_reachable(self) -> bool:
        """False from a network failure until the next command that succeeds."""
        return self._reachable

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
        address = address_of(engine, instance)
        value = member_value(patterns, self.http_urls.get(address)) if patterns else b""
        version = await self._register(
            keys=[self.keys.registry_members, self.keys.registry, self.keys.registry_version],
            args=[
                engine.value,
                address,
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
            pipe.hgetall(self.keys.registry_members)
            registry, version, members = await pipe.execute()
        self._routing.load(registry, int(version or 0))
        self._routing.load_members(members)

    async def _follow_control(self) -> None:
        """Refresh the routing table whenever an engine announces a subscription change."""
        backoff = 0.05
        while True:
            try:
                events = channel_events(self.client, self.keys.control)
                async with contextlib.aclosing(events):  # its connection closes with it
                    async for event in events:
                        if event is ChannelEvent.SUBSCRIBED:
                            await self._refresh_routing()  # what changed while we were away
                            self.reachable(True, "")
                            backoff = 0.05
                        else:
                            self._schedule_refresh()
            except (*NETWORK_ERRORS, RedisClusterException) as exc:
                self.reachable(False, f"control channel: {exc}")
                if self.topology is not None:  # its node may have failed over
                    await self.topology.refresh()
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
