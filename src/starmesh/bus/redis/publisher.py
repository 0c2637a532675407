"""Publishing to Redis: every publish of one event-loop tick goes out in one round trip.

``submit`` queues the publish's packed commands and returns once Redis has answered. The
first submit of a tick schedules a flush; it runs when the tick ends, so everything queued
meanwhile travels together, with no timer adding latency. One flush is in flight at a time
(on one connection), which keeps each publisher's messages in order.

Each batch that holds a routed message ends with a read of the registry version. If it
moved, the routing table is reloaded and every message of the batch is also sent to the
engine types it missed.

How a batch reaches Redis is the subclass's: :class:`ServerPublisher` writes it to one
server on one connection; ``cluster_publisher.ClusterPublisher`` splits it by master.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypedDict, Unpack

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.registry import RoutingTable
from starmesh.bus.redis.resp import XaddPacker, pack
from starmesh.core.enums import EngineType, MessagePriority
from starmesh.core.errors import BusUnavailableError, FencedError, MessageBusError

__all__ = ["NETWORK_ERRORS", "Outgoing", "Publisher", "PublisherOptions", "ServerPublisher"]

logger = logging.getLogger(__name__)

NETWORK_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def _refused(error: Exception) -> MessageBusError:
    if str(error).startswith("FENCED"):  # a hub's write under a lease it has lost
        return FencedError(f"Redis refused a publish: {error}")
    # redis-py strips the error's code; NOPERM (an ACL) says most, so say it.
    code = "NOPERM " if isinstance(error, NoPermissionError) else ""
    return MessageBusError(f"Redis refused a publish: {code}{error}")


class Outgoing:
    """One publish: its commands, and for a routed message what it needs for fix-ups."""

    __slots__ = (
        "commands",
        "data",
        "deadline",
        "delivered",
        "engines",
        "error",
        "future",
        "priority",
        "routed_at",
        "topic",
    )

    def __init__(
        self,
        commands: list[bytes],
        future: asyncio.Future[int],
        topic: str | None = None,
        engines: tuple[EngineType, ...] = (),
        priority: MessagePriority = MessagePriority.NORMAL,
        data: bytes = b"",
        routed_at: int = -1,
        deadline: float | None = None,
    ) -> None:
        self.commands = commands
        self.deadline = deadline
        """Loop time after which to give up (None: the publish timeout)."""
        self.future = future
        self.topic = topic
        self.engines = engines
        self.routed_at = routed_at
        """The registry version ``engines`` was computed from."""
        self.priority = priority
        self.data = data
        self.delivered = 0
        self.error: Exception | None = None


class PublisherOptions(TypedDict):
    routing: RoutingTable
    refresh_routing: Callable[[], Awaitable[None]]
    lane_maxlen: int
    publish_timeout: float
    max_backoff: float
    on_reachable: Callable[[bool, str], None]


class Publisher:
    def __init__(
        self,
        keys: Keys,
        *,
        routing: RoutingTable,
        refresh_routing: Callable[[], Awaitable[None]],
        lane_maxlen: int,
        publish_timeout: float,
        max_backoff: float,
        on_reachable: Callable[[bool, str], None],
    ) -> None:
        self._keys = keys
        self._routing = routing
        self._refresh_routing = refresh_routing
        self._lane_maxlen = lane_maxlen
        self._publish_timeout = publish_timeout
        self._max_backoff = max_backoff
        self._on_reachable = on_reachable
        self._version_query = pack(b"GET", keys.registry_version.encode())
        self._packers: dict[tuple[EngineType, MessagePriority], XaddPacker] = {}
        self._queue: list[Outgoing] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0
        self.fixups = 0

    def inbox_xadd(self, engine: EngineType, priority: MessagePriority, data: bytes) -> bytes:
        packer = self._packers.get((engine, priority))
        if packer is None:
            packer = XaddPacker(self._keys.inbox(engine, priority), self._lane_maxlen)
            self._packers[(engine, priority)] = packer
        return packer(data)

    def submit(self, outgoing: Outgoing) -> asyncio.Future[int]:
        """Queue ``outgoing`` for the next flush; the future gives its delivered count."""
        self._queue.append(outgoing)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_all())
        return outgoing.future

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._close_connections()

    async def _flush_all(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._flush(batch)
        finally:
            self._flusher = None

    async def _flush(self, batch: list[Outgoing]) -> None:
        try:
            # Only routed messages need the version: replies, acks and broadcasts go to fixed keys.
            routed = any(o.topic is not None for o in batch)
            version = await self._send(batch, read_version=routed)
            stale = [o for o in batch if o.topic is not None and o.routed_at != version]
            if stale:
                # Compare with the version each message was routed at, not with the table now:
                # the control channel may have refreshed it while this batch was in flight.
                if self._routing.version != version:
                    await self._refresh_routing()
                await self._send_fixups(stale)
        except BusUnavailableError as exc:
            for outgoing in batch:
                if not outgoing.future.done():
                    outgoing.future.set_exception(exc)
            return
        except Exception as exc:  # a bug must not strand the publishers waiting on this batch
            logger.exception("publishing a batch of %d failed", len(batch))
            for outgoing in batch:
                if not outgoing.future.done():
                    outgoing.future.set_exception(MessageBusError(f"publish failed: {exc!r}"))
            return
        for outgoing in batch:
            if outgoing.future.done():
                continue
            if outgoing.error is not None:
                outgoing.future.set_exception(_refused(outgoing.error))
            else:
                outgoing.future.set_result(outgoing.delivered)

    async def _send_fixups(self, batch: list[Outgoing]) -> None:
        """Deliver each routed message of ``batch`` to engine types added since it was routed."""
        fixups = []
        for outgoing in batch:
            assert outgoing.topic is not None
            missed = [e for e in self._routing.engines(outgoing.topic) if e not in outgoing.engines]
            if missed:
                commands = [self.inbox_xadd(e, outgoing.priority, outgoing.data) for e in missed]
                fixups.append((outgoing, Outgoing(commands, outgoing.future)))
        if fixups:
            self.fixups += len(fixups)
            await self._send([fix for _, fix in fixups], read_version=False)
            for outgoing, fix in fixups:
                outgoing.delivered += fix.delivered
                outgoing.error = outgoing.error or fix.error

    async def _send(self, batch: list[Outgoing], *, read_version: bool) -> int | None:
        """Write ``batch``, retrying on network errors until the publish timeout (or the
        earliest deadline of the batch); sets each item's ``delivered`` and ``error``. Returns
        the registry version when ``read_version``.
        """
        raise NotImplementedError

    async def _close_connections(self) -> None:
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        """What this kind of publisher counts besides batches and fix-ups."""
        return {}

    def _deadline(self, batch: list[Outgoing]) -> float:
        now = asyncio.get_running_loop().time()
        return min([now + self._publish_timeout, *(o.deadline for o in batch if o.deadline)])


class ServerPublisher(Publisher):
    """Every batch in one round trip on one connection to one server."""

    def __init__(
        self, client: aioredis.Redis, keys: Keys, **options: Unpack[PublisherOptions]
    ) -> None:
        super().__init__(keys, **options)
        self._client = client
        self._connection: AbstractConnection | None = None

    async def _send(self, batch: list[Outgoing], *, read_version: bool) -> int | None:
        loop = asyncio.get_running_loop()
        deadline = self._deadline(batch)
        timeout = max(0.0, deadline - loop.time())
        commands = [command for outgoing in batch for command in outgoing.commands]
        if read_version:
            commands.append(self._version_query)
        payload = b"".join(commands)
        backoff = 0.02
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    connection = await self._get_connection()
                    await connection.send_packed_command(payload, check_health=False)
                    for outgoing in batch:
                        outgoing.delivered = 0
                        outgoing.error = None
                        for _ in outgoing.commands:
                            try:
                                if await connection.read_response() is not None:
                                    outgoing.delivered += 1
                            except ResponseError as exc:
                                outgoing.error = exc
                    version = await connection.read_response() if read_version else None
                self.batches += 1
                self._on_reachable(True, "")
                return int(version) if version is not None else (0 if read_version else None)
            except (*NETWORK_ERRORS, TimeoutError) as exc:
                await self._drop_connection()
                self._on_reachable(False, str(exc) or type(exc).__name__)
                if loop.time() + backoff > deadline:
                    raise BusUnavailableError(
                        f"Redis unreachable for {round(timeout, 2):g} s while publishing "
                        f"({exc}); the message was not sent"
                    ) from exc
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self._max_backoff)

    async def _get_connection(self) -> AbstractConnection:
        if self._connection is None:
            connection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            assert isinstance(connection, AbstractConnection)
            self._connection = connection
        return self._connection

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()

    async def _close_connections(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()
            await self._client.connection_pool.release(self._connection)
            self._connection = None
