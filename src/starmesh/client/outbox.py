"""The local outbox: messages the bus could not take, kept in order until a path delivers them.

One queue per (destination engine, priority); a message for three engines is three entries.
They leave each queue in publish order, the most urgent queue first, exactly as the bus
would have handed them over. The outbox is bounded (``STARMESH_OUTBOX_CAPACITY`` entries): a
publisher finding it full waits for room up to the publish timeout. With
``STARMESH_OUTBOX_PATH`` every entry is also in a SQLite file before ``put`` returns (see
``outbox_store.py``), so a publisher restarted after a crash sends what it had promised.
An entry whose destination is unknown (the bus was down before the publisher ever read the
registry) has target None: it is routed normally once the bus is back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Iterable

from starmesh.client.outbox_store import OutboxStore
from starmesh.core.codec import MessageCodec
from starmesh.core.enums import EngineType, MessagePriority
from starmesh.core.errors import BusUnavailableError
from starmesh.core.message import Message

__all__ = ["Outbox", "OutboxEntry"]

_URGENT_FIRST = tuple(sorted(MessagePriority, reverse=True))


class OutboxEntry:
    __slots__ = ("data", "message", "seq", "target")

    def __init__(self, seq: int, message: Message, data: bytes, target: EngineType | None):
        self.seq = seq
        self.message = message
        self.data = data
        self.target = target


class Outbox:
    def __init__(self, capacity: int, codec: MessageCodec, store: OutboxStore | None) -> None:
        self.capacity = capacity
        self._codec = codec
        self._store = store
        self._queues: dict[tuple[EngineType | None, MessagePriority], deque[OutboxEntry]] = {}
        self._size = 0
        self._seq = itertools.count(1)
        self._room = asyncio.Condition()
        self.added = 0
        self.delivered = 0

    def __len__(self) -> int:
        return self._size

    async def open(self) -> int:
        """Load what the store kept from a previous run; how many entries."""
        if self._store is None:
            return 0
        rows = await self._store.open()
        for seq, target, priority, data in rows:
            message = self._codec.decode(data)
            entry = OutboxEntry(seq, message, data, EngineType(target) if target else None)
            self._queues.setdefault((entry.target, MessagePriority(priority)), deque()).append(
                entry
            )
        self._size = len(rows)
        self._seq = itertools.count(max((row[0] for row in rows), default=0) + 1)
        return len(rows)

    async def put(
        self, message: Message, data: bytes, targets: Iterable[EngineType | None], timeout: float
    ) -> None:
        """Queue ``message`` for each target (persisted first, with a store); waits up to
        ``timeout`` for room, then raises BusUnavailableError."""
        wanted = list(targets)
        try:
            async with asyncio.timeout(timeout), self._room:
                await self._room.wait_for(lambda: self._size + len(wanted) <= self.capacity)
        except TimeoutError:
            raise BusUnavailableError(
                f"the bus is unreachable and the outbox is full ({self.capacity:,} entries, "
                f"STARMESH_OUTBOX_CAPACITY) for {timeout:g} s: {message.topic!r} was not sent"
            ) from None
        entries = [OutboxEntry(next(self._seq), message, data, t) for t in wanted]
        self._size += len(entries)  # room taken now: concurrent puts see it
        try:
            if self._store is not None:
                rows = [(e.seq, e.target or "", int(message.priority), data) for e in entries]
                await self._store.add(rows)
        except BaseException:
            self._size -= len(entries)
            await self._room_changed()
            raise
        for entry in entries:
            self._queues.setdefault((entry.target, message.priority), deque()).append(entry)
        self.added += len(entries)

    def targets(self) -> list[EngineType | None]:
        """Destinations with something queued."""
        return list(dict.fromkeys(t for (t, _), q in self._queues.items() if q))

    def heads(self, target: EngineType | None, limit: int, max_bytes: int) -> list[OutboxEntry]:
        """The next entries for ``target`` in delivery order: most urgent queue first, each in
        publish order; at most ``limit`` of them and ``max_bytes`` of data (at least one)."""
        taken: list[OutboxEntry] = []
        size = 0
        for priority in _URGENT_FIRST:
            for entry in self._queues.get((target, priority), ()):
                if len(taken) >= limit or (taken and size + len(entry.data) > max_bytes):
                    return taken
                taken.append(entry)
                size += len(entry.data)
        return taken

    async def remove(self, entries: list[OutboxEntry]) -> None:
        """Drop delivered ``entries`` (heads of their queues, as ``heads`` gave them)."""
        for entry in entries:
            queue = self._queues[(entry.target, entry.message.priority)]
            if queue and queue[0] is entry:
                queue.popleft()
            else:
                queue.remove(entry)
        self._size -= len(entries)
        self.delivered += len(entries)
        await self._room_changed()
        if self._store is not None and entries:
            await self._store.delete([e.seq for e in entries])

    def pending(self, limit: int = 20) -> list[str]:
        """Ids of queued messages (for reports)."""
        ids = [e.message.id for q in self._queues.values() for e in q]
        return list(dict.fromkeys(ids))[:limit]

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    @property
    def persistent(self) -> bool:
        return self._store is not None

    async def _room_changed(self) -> None:
        async with self._room:
            self._room.notify_all()
