"""A bounded, strictly prioritised queue: one per subscriber of the memory transport.

Five FIFO lanes, one per priority, each with its own capacity, so a backlog of NORMAL
messages never blocks a FLASH_CRASH publisher. ``get`` always takes from the most urgent
non-empty lane. When a lane is full, ``put`` waits, unless the topic is *conflated*
(latest-wins): then a newer message replaces the queued one of the same topic in place, or,
if there is none, the oldest message of the lane is dropped. Both count as ``dropped``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from starmesh.core.enums import MessagePriority
from starmesh.core.message import Message

__all__ = ["InboxEntry", "PriorityInbox"]

_URGENT_FIRST = tuple(sorted((int(p) for p in MessagePriority), reverse=True))


class InboxEntry:
    """A queued delivery: the message and how many times handling it has been tried."""

    __slots__ = ("deliveries", "message")

    def __init__(self, message: Message, deliveries: int = 0) -> None:
        self.message = message
        self.deliveries = deliveries


class PriorityInbox:
    def __init__(self, lane_capacity: int, conflate: Callable[[str], bool] | None = None) -> None:
        if lane_capacity <= 0:
            raise ValueError("lane_capacity must be positive")
        self.lane_capacity = lane_capacity
        size = max(_URGENT_FIRST) + 1
        self._lanes: list[deque[InboxEntry]] = [deque() for _ in range(size)]
        self._space_waiters: list[deque[asyncio.Future[None]]] = [deque() for _ in range(size)]
        self._conflate = conflate
        self._queued_by_topic: list[dict[str, InboxEntry]] = [{} for _ in range(size)]
        self._getter: asyncio.Future[None] | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes)

    def depths(self) -> dict[str, int]:
        return {p.lane: len(self._lanes[p]) for p in MessagePriority}

    def put_nowait(self, entry: InboxEntry) -> bool:
        """Queue ``entry``; False if its lane is full and its topic is not conflated."""
        priority = entry.message.priority
        lane = self._lanes[priority]
        conflated = self._conflate is not None and self._conflate(entry.message.topic)
        if len(lane) >= self.lane_capacity:
            if not conflated:
                return False
            if self._replace_queued(priority, entry):
                return True
            self._forget(priority, lane.popleft())
            self.dropped += 1
        lane.append(entry)
        if conflated:
            self._queued_by_topic[priority][entry.message.topic] = entry
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)
        return True

    async def put(self, entry: InboxEntry) -> None:
        """Queue ``entry``, waiting while its lane is full; cancel it (a timeout) to give up."""
        priority = entry.message.priority
        waiters = self._space_waiters[priority]
        while not self.put_nowait(entry):
            waiter = asyncio.get_running_loop().create_future()
            waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done():
                    # Woken for a free slot but cancelled before taking it: pass the slot on.
                    self._wake_one_putter(priority)
                else:
                    waiters.remove(waiter)
                raise

    def push(self, entry: InboxEntry) -> bool:
        """Queue ``entry`` whatever the capacity: for an entry retried by the consumer (it holds
        one at a time, so a lane overshoots by at most one) or fetched from a durable queue
        by a reader that bounds its own fetches. A conflated topic with a newer message already
        queued is dropped instead (False): the latest value wins.
        """
        priority = entry.message.priority
        topic = entry.message.topic
        conflated = self._conflate is not None and self._conflate(topic)
        if conflated and topic in self._queued_by_topic[priority]:
            self.dropped += 1
            return False
        self._lanes[priority].append(entry)
        if conflated:
            self._queued_by_topic[priority][topic] = entry
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)
        return True

    def get_nowait(self) -> InboxEntry | None:
        """The oldest entry of the most urgent non-empty lane, or None if all are empty."""
        lanes = self._lanes
        for priority in _URGENT_FIRST:
            lane = lanes[priority]
            if lane:
                entry = lane.popleft()
                if self._conflate is not None:
                    self._forget(priority, entry)
                if self._space_waiters[priority]:
                    self._wake_one_putter(priority)
                return entry
        return None

    async def wait(self) -> None:
        """Return once an entry may be available (or ``wake`` was called)."""
        if any(self._lanes):
            return
        self._getter = asyncio.get_running_loop().create_future()
        try:
            await self._getter
        finally:
            self._getter = None

    def wake(self) -> None:
        """Make a pending ``wait`` return, e.g. so the consumer notices it is closing."""
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    def _wake_one_putter(self, priority: int) -> None:
        waiters = self._space_waiters[priority]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _replace_queued(self, priority: int, entry: InboxEntry) -> bool:
        queued = self._queued_by_topic[priority].get(entry.message.topic)
        if queued is None:
            return False
        queued.message = entry.message
        queued.deliveries = 0
        self.dropped += 1
        return True

    def _forget(self, priority: int, entry: InboxEntry) -> None:
        by_topic = self._queued_by_topic[priority]
        if by_topic.get(entry.message.topic) is entry:
            del by_topic[entry.message.topic]
