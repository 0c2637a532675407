"""Publishing to a Redis Cluster: a batch split by master, each part in one write.

A tick's batch holds commands for many slots (every subscribing engine's inbox, the
registry version, snapshot keys). Each goes to the master of its slot, on a connection of
the publisher's own to that master: all parts are written first, then each master's
replies read in turn, so a batch costs one round trip to the slowest master, as on one
server. Each master's part keeps the batch's order, and one batch is in flight at a time,
so every stream sees a publisher's messages in order.

A command answered with a redirection (MOVED after a failover or a resharding, ASK during a
migration, TRYAGAIN, CLUSTERDOWN while a failover is under way) did not run: the slot map is
refreshed and the command sent again. A master that fails mid-batch leaves its unanswered
commands unknown: they are sent again once the slot map names the slot's new master, so a
message may land twice, with the same id; consumers drop the copy (docs/wire-format.md).
Past the publish's deadline the publish fails with BusUnavailableError (the client then
fails over to HTTP and the outbox).

With ``wait_replicas`` (``STARMESH_REDIS_WAIT_REPLICAS``), each master's part ends with
``WAIT``: a part its replicas did not all confirm in time is sent again, so a publish returns
only once a replica holds it, and the kill of a master loses none.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Unpack

from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import AskError, MovedError, ResponseError

from starmesh.bus.redis.cluster import Topology, is_redirect
from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.publisher import NETWORK_ERRORS, Outgoing, Publisher, PublisherOptions
from starmesh.bus.redis.resp import pack
from starmesh.core.errors import BusUnavailableError

__all__ = ["ClusterPublisher"]

_ASKING = b"*1\r\n$6\r\nASKING\r\n"


class _Part:
    """The commands of a batch for one node: their indexes in the batch and what to send."""

    __slots__ = ("asking", "connection", "indexes", "node", "replies")

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.indexes: list[int] = []
        self.asking: list[bool] = []
        self.replies: list[Any] = []
        self.connection: AbstractConnection | None = None


class ClusterPublisher(Publisher):
    def __init__(
        self,
        topology: Topology,
        keys: Keys,
        *,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1_000,
        **options: Unpack[PublisherOptions],
    ) -> None:
        super().__init__(keys, **options)
        self._topology = topology
        self._connections: dict[str, AbstractConnection] = {}
        self._wait_replicas = wait_replicas
        self._wait = (
            pack(b"WAIT", str(wait_replicas).encode(), str(wait_timeout_ms).encode())
            if wait_replicas
            else b""
        )
        self.redirections = 0
        self.resent = 0
        self.unreplicated = 0

    def counts(self) -> dict[str, int]:
        return {
            "cluster_redirections": self.redirections,
            "cluster_resent": self.resent,
            "cluster_unreplicated": self.unreplicated,
        }

    async def _send(self, batch: list[Outgoing], *, read_version: bool) -> int | None:
        loop = asyncio.get_running_loop()
        deadline = self._deadline(batch)
        timeout = max(0.0, deadline - loop.time())
        owners: list[Outgoing | None] = []  # None: the registry version query
        commands: list[bytes] = []
        for outgoing in batch:
            outgoing.delivered = 0
            outgoing.error = None
            owners += [outgoing] * len(outgoing.commands)
            commands += outgoing.commands
        if read_version:
            owners.append(None)
            commands.append(self._version_query)
        version: int | None = 0 if read_version else None
        todo = list(range(len(commands)))
        asking: dict[int, tuple[str, int]] = {}
        backoff = 0.02
        while True:
            parts = self._split(todo, commands, asking)
            failure = await self._round(parts, commands, deadline)
            retry: list[int] = []
            moved = failure is not None
            for part in parts:
                for index, reply in zip(part.indexes, part.replies, strict=False):
                    owner = owners[index]
                    if isinstance(reply, ResponseError) and is_redirect(reply):
                        retry.append(index)
                        self.redirections += 1
                        if isinstance(reply, AskError) and not isinstance(reply, MovedError):
                            asking[index] = (reply.host, int(reply.port))
                        else:
                            moved = True
                            asking.pop(index, None)
                    elif owner is None:
                        if isinstance(reply, ResponseError):
                            raise reply  # as on one server: the batch fails, loudly
                        version = int(reply or 0)
                    elif isinstance(reply, ResponseError):
                        owner.error = reply
                    elif reply is not None:
                        owner.delivered += 1
                unanswered = part.indexes[len(part.replies) :]
                retry += unanswered
                self.resent += len(unanswered)
            if not retry:
                self.batches += 1
                self._on_reachable(True, "")
                return version
            if failure is not None:
                self._on_reachable(False, failure)
            if loop.time() + backoff > deadline:
                raise BusUnavailableError(
                    f"Redis Cluster did not take a publish within {round(timeout, 2):g} s "
                    f"({failure or 'redirected'}); the message was not sent"
                )
            if moved:
                await self._topology.refresh()
            if failure is not None or moved:
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self._max_backoff)
            todo = sorted(retry)  # each master's part in batch order again

    def _split(
        self, todo: list[int], commands: list[bytes], asking: dict[int, tuple[str, int]]
    ) -> list[_Part]:
        topology = self._topology
        parts: dict[str, _Part] = {}
        for index in todo:
            target = asking.get(index)
            node = topology.node(*target) if target is not None else None
            if node is None:
                node = topology.master(topology.slot_of(commands[index]))
            part = parts.get(node.name)
            if part is None:
                part = parts[node.name] = _Part(node)
            part.indexes.append(index)
            part.asking.append(target is not None)
        return list(parts.values())

    async def _round(
        self, parts: list[_Part], commands: list[bytes], deadline: float
    ) -> str | None:
        """Send every part, then read every part's replies (into ``part.replies``, as far as
        they came); the first failure, if any (its part's connection is dropped)."""
        failure: str | None = None
        try:
            async with asyncio.timeout_at(deadline):
                for part in parts:
                    payload = b"".join(
                        _ASKING + commands[i] if ask else commands[i]
                        for i, ask in zip(part.indexes, part.asking, strict=True)
                    )
                    payload += self._wait
                    try:
                        part.connection = self._connection(part.node)
                        await part.connection.send_packed_command(payload, check_health=False)
                    except NETWORK_ERRORS as exc:
                        failure = failure or _describe(part.node, exc)
                        await self._drop(part)
                for part in parts:
                    if part.connection is None:
                        continue
                    try:
                        for ask in part.asking:
                            if ask:
                                await part.connection.read_response()
                            try:
                                part.replies.append(await part.connection.read_response())
                            except ResponseError as exc:
                                part.replies.append(exc)
                        if self._wait:
                            unreplicated = await self._replicated(part)
                            if unreplicated is not None:
                                failure = failure or f"{part.node.name}: {unreplicated}"
                    except NETWORK_ERRORS as exc:
                        failure = failure or _describe(part.node, exc)
                        await self._drop(part)
        except TimeoutError:
            failure = failure or "timed out"
            for part in parts:  # a part not read to its end may hold replies: start afresh
                if part.connection is not None and len(part.replies) < len(part.indexes):
                    await self._drop(part)
        return failure

    async def _replicated(self, part: _Part) -> str | None:
        """Read the part's WAIT; if fewer replicas confirmed than wanted, forget its replies
        (the part goes again, after a refresh of the slot map) and say why."""
        assert part.connection is not None
        try:
            confirmed = await part.connection.read_response()
        except ResponseError as exc:
            # "WAIT cannot be used with replica instances": the slot map still names a master
            # that a failover made a replica (its writes were MOVED, never run).
            confirmed = exc
        if isinstance(confirmed, int) and confirmed >= self._wait_replicas:
            return None
        self.unreplicated += 1
        part.replies = []
        if isinstance(confirmed, ResponseError):
            return f"WAIT refused ({confirmed})"
        return "not on a replica in time"

    def _connection(self, node: ClusterNode) -> AbstractConnection:
        connection = self._connections.get(node.name)
        if connection is None:
            connection = self._connections[node.name] = self._topology.connect(node)
        return connection

    async def _drop(self, part: _Part) -> None:
        connection = self._connections.pop(part.node.name, None)
        part.connection = None
        if connection is not None:
            await connection.disconnect()

    async def _close_connections(self) -> None:
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            await connection.disconnect()


def _describe(node: ClusterNode, exc: BaseException) -> str:
    return f"{node.name}: {exc or type(exc).__name__}"
