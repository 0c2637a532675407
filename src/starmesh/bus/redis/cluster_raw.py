"""A hot loop's own connection on a Redis Cluster: to the master of one slot, following the
slot when it moves (a failover, a resharding).

The readers send one command at a time, each to the keys of one engine (one hash tag, so one
slot). A redirection (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or a blocked read cut short because
its master became a replica: UNBLOCKED) means the command did not run: the slot map is read
again and the command sent to the slot's master, a few times; then the caller sees a
connection error and backs off as it does for any other.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, ResponseError

from starmesh.bus.redis.cluster import ClusterMoved, Topology, is_redirect

__all__ = ["SlotCommands"]

_ATTEMPTS = 5
"""Redirections followed before the caller is told (a failover under way takes longer)."""


class SlotCommands:
    """The :class:`~starmesh.bus.redis.raw.Raw` of one slot of a cluster."""

    def __init__(self, topology: Topology, key: str) -> None:
        self._topology = topology
        self.slot = key_slot(key.encode())
        self._connection: AbstractConnection | None = None
        self._stale = False
        self.redirections = 0

    async def one(self, packed: bytes) -> Any:
        asking: tuple[str, int] | None = None
        error: ResponseError | None = None
        for attempt in range(_ATTEMPTS):
            if attempt and not isinstance(error, AskError):
                await asyncio.sleep(0.02 * attempt)  # a failover takes a moment to settle
            connection = await self._get(asking)
            try:
                if asking is not None:
                    await connection.send_packed_command(b"*1\r\n$6\r\nASKING\r\n", False)
                    await connection.read_response()
                await connection.send_packed_command(packed, check_health=False)
                reply = await connection.read_response()
            except ResponseError as exc:
                if not is_redirect(exc):
                    raise
                error = exc
            except BaseException as exc:
                # Cancelled or failed half-way, the connection may hold part of a reply; the
                # node may be gone: reconnect next time, to the master a fresh map names.
                await self._drop()
                self._stale = isinstance(exc, Exception)
                raise
            else:
                if asking is not None:
                    await self._drop()  # that node serves the slot only for this command
                return reply
            self.redirections += 1
            await self._drop()
            if isinstance(error, AskError) and not isinstance(error, MovedError):
                asking = (error.host, int(error.port))  # migrating: ask the importing node once
            else:
                asking = None
                await self._topology.refresh()
        raise ClusterMoved(f"slot {self.slot} kept moving: {error}")

    async def close(self) -> None:
        await self._drop()

    async def _get(self, asking: tuple[str, int] | None) -> AbstractConnection:
        if asking is not None:
            node = self._topology.node(*asking)
            if node is None:
                await self._topology.refresh()
                node = self._topology.node(*asking) or self._topology.master(self.slot)
            self._connection = self._topology.connect(node)
        elif self._connection is None:
            if self._stale:
                self._stale = False
                await self._topology.refresh()
            self._connection = self._topology.connect(self._topology.master(self.slot))
        return self._connection

    async def _drop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.disconnect()
