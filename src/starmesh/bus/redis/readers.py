"""Fetching an engine's inbox lanes into one instance's local priority buffer.

Two readers XREADGROUP the lanes, each on a connection of its own (``raw.py``): the *reader*
fetches the lanes below URGENT while fewer than ``max_prefetch`` entries wait, else waits for
room; the *urgent reader* blocks on the FLASH_CRASH and URGENT lanes alone, so Redis hands it
an urgent message the moment it arrives, however big the fetched backlog.

Whatever a fetch brings (a reader's, upkeep's reclaim, the backlog taken at close) goes
through :meth:`InboxReaders.take`: decoded in slices that give the event loop a turn, and
buffered; an entry that does not decode becomes a dead letter. Delivering, acking and
reclaiming are the endpoint's (``endpoint.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from starmesh.bus.inbox import InboxEntry, PriorityInbox
from starmesh.bus.redis.follow import Retrying
from starmesh.bus.redis.raw import Raw, raw_streams
from starmesh.bus.redis.replies import Entries
from starmesh.bus.redis.resp import pack
from starmesh.core.enums import MessagePriority
from starmesh.core.errors import MessageDecodeError
from starmesh.core.message import Message

if TYPE_CHECKING:
    from starmesh.bus.redis.transport import RedisTransport

__all__ = ["InboxReaders", "StreamEntry"]

_Offsets = dict[Any, Any]
"""Stream -> last id read, as XREADGROUP takes it (redis-py's key type is invariant)."""
_Rejected = tuple[str, bytes, bytes, str]
"""(stream, entry id, raw bytes, reason): an entry to dead-letter instead of handling."""

_URGENT_LANES = (MessagePriority.FLASH_CRASH, MessagePriority.URGENT)
_DECODE_SLICE = 64
"""Fetched entries decoded between two turns given to the event loop."""


class StreamEntry(InboxEntry):
    """A fetched delivery and where it came from (``stream`` is None for broadcast)."""

    __slots__ = ("entry_id", "stream")

    def __init__(
        self, message: Message, stream: str | None, entry_id: bytes, deliveries: int = 0
    ) -> None:
        super().__init__(message, deliveries)
        self.stream = stream
        self.entry_id = entry_id


class InboxReaders:
    """The endpoint's ``buffer``, ``room`` and ``in_flight`` are shared, not copied: the
    deliverer takes from the buffer and sets ``room``; acks take entries out of flight."""

    def __init__(
        self,
        *,
        transport: RedisTransport,
        group: str,
        instance: str,
        lanes: Mapping[MessagePriority, str],
        buffer: PriorityInbox,
        room: asyncio.Event,
        low_water: int,
        in_flight: set[tuple[str, bytes]],
        ack: Callable[[str, bytes], None],
        dead_letter: Callable[[str, bytes, bytes, str], Awaitable[None]],
        retrying: Retrying,
    ) -> None:
        self._transport = transport
        self._settings = transport.settings
        self._codec = transport.codec
        self._group = group
        self._instance = instance
        self._lanes = lanes
        self._urgent_streams: _Offsets = {lanes[p]: ">" for p in _URGENT_LANES}
        # One reader per lane: two readers' fetches of one lane, decoded in slices that give
        # the loop a turn, interleave in the buffer and break the lane's publish order.
        self._routine_streams: _Offsets = {
            key: ">" for priority, key in lanes.items() if priority not in _URGENT_LANES
        }
        self._buffer = buffer
        self._room = room
        self._low_water = low_water
        self._in_flight = in_flight
        self._ack = ack
        self._dead_letter = dead_letter
        self._retrying = retrying

    async def read_loop(self) -> None:
        """Fetch the lanes below URGENT while fewer than ``max_prefetch`` entries wait; else
        wait for room. (The urgent reader alone fetches the URGENT and FLASH_CRASH lanes.)"""
        settings = self._settings
        connection = self._transport.raw_commands(self._lanes[MessagePriority.NORMAL])
        command = self._xreadgroup(self._routine_streams)
        try:
            while True:
                if len(self._buffer) >= settings.max_prefetch:
                    self._room.clear()
                    if len(self._buffer) >= self._low_water:
                        await self._room.wait()
                    continue
                await self._fetch(connection, command)
        finally:
            await connection.close()

    async def urgent_read_loop(self) -> None:
        """Block on the FLASH_CRASH and URGENT lanes, whatever else is going on: Redis wakes
        this read the moment one arrives, so it overtakes any fetched backlog.
        """
        connection = self._transport.raw_commands(self._lanes[MessagePriority.URGENT])
        command = self._xreadgroup(self._urgent_streams)
        try:
            while True:
                await self._fetch(connection, command)
        finally:
            await connection.close()

    async def _fetch(self, connection: Raw, command: bytes) -> None:
        response = await self._retrying("read", partial(connection.one, command))
        fetched = raw_streams(response)
        if fetched:
            await self.take(fetched)

    def _xreadgroup(self, streams: _Offsets) -> bytes:
        """The packed XREADGROUP a reader sends again and again (its ids are always ``>``)."""
        settings = self._settings
        return pack(
            b"XREADGROUP", b"GROUP", self._group.encode(), self._instance.encode(),
            b"COUNT", str(settings.read_count).encode(), b"BLOCK", str(settings.block_ms).encode(),
            b"STREAMS", *(key.encode() for key in streams), *(b">" for _ in streams),
        )  # fmt: skip

    def _accept(
        self, fetched: list[tuple[str, Entries]], deliveries: dict[bytes, int] | None = None
    ) -> list[_Rejected]:
        """Buffer fetched entries; returns those that must go to the dead letters instead."""
        rejected: list[_Rejected] = []
        for stream, stream_entries in fetched:
            for entry_id, fields in stream_entries:
                if fields is None:  # the entry was trimmed while pending
                    self._ack(stream, entry_id)
                    continue
                key = (stream, entry_id)
                if key in self._in_flight:
                    continue
                data = fields.get(b"m")
                if data is None:
                    rejected.append((stream, entry_id, repr(fields).encode(), "no field 'm'"))
                    continue
                try:
                    message = self._codec.decode(data)
                except MessageDecodeError as exc:
                    rejected.append((stream, entry_id, data, str(exc)))
                    continue
                prior = 0 if deliveries is None else deliveries.get(entry_id, 0)
                self._in_flight.add(key)
                self._buffer.push(StreamEntry(message, stream, entry_id, prior))
        return rejected

    async def take(
        self, fetched: list[tuple[str, Entries]], deliveries: dict[bytes, int] | None = None
    ) -> None:
        """Decode and buffer ``fetched`` in slices, giving the event loop a turn in between:
        decoding a whole fetch at once holds up an urgent message arriving meanwhile.
        """
        rejected: list[_Rejected] = []
        for stream, stream_entries in fetched:
            for start in range(0, len(stream_entries), _DECODE_SLICE):
                if start:
                    await asyncio.sleep(0)
                chunk = stream_entries[start : start + _DECODE_SLICE]
                rejected += self._accept([(stream, chunk)], deliveries)
        for stream, entry_id, raw, reason in rejected:
            await self._dead_letter(stream, entry_id, raw, reason)
