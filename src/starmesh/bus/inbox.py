"""A bounded, strictly prioritised queue: one per subscriber of the memory transport.

Five FIFO lanes, one per priority, each with its own capacity, so a backlog of NORMAL
messages never blocks a FLASH_CRASH publisher. ``get`` always takes from the most urgent
non-empty lane. When a lane is full, ``put`` waits, unless the topic is *conflated*
(latest-wins): then a newer message replaces the queued one of the same topic in place, or,
if there is none, the oldest message of the lane is dropped. Both count as ``dropped``.

A lane holds a bare :class:`Message` (the memory transport's fast path: nothing allocated
per delivery, nothing for the garbage collector to track) or an :class:`InboxEntry` (a
message being retried, one whose place a newer conflated value may take, or a subclass
carrying where a Redis entry came from). ``get_nowait`` returns what was queued.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from starmesh.core.enums import MessagePriority
from starmesh.core.message import Message

__all__ = ["LANES", "InboxEntry", "PriorityInbox", "Queued", "message_of"]

_URGENT_FIRST = tuple(sorted((int(p) for p in MessagePriority), reverse=True))
LANES = max(_URGENT_FIRST) + 1


class InboxEntry:
    """A queued delivery: the message and how many times handling it has been tried."""

    __slots__ = ("deliveries", "message")

    def __init__(self, message: Message, deliveries: int = 0) -> None:
        self.message = message
        self.deliveries = deliveries


Queued = Message | InboxEntry


def message_of(item: Queued) -> Message:
    return item if type(item) is Message else item.message  # type: ignore[union-attr]


class PriorityInbox:
    """``lanes[priority]`` and ``getter`` are used directly by the memory transport's hot
    path: after an append to a lane with room, if ``getter`` is set, it calls ``arrived()``.
    """

    __slots__ = (
        "_conflate",
        "_queued_by_topic",
        "_space_waiters",
        "dropped",
        "getter",
        "held",
        "lane_capacity",
        "lanes",
    )

    def __init__(self, lane_capacity: int, conflate: Callable[[str], bool] | None = None) -> None:
        if lane_capacity <= 0:
            raise ValueError("lane_capacity must be positive")
        self.lane_capacity = lane_capacity
        self.lanes: list[deque[Queued]] = [deque() for _ in range(LANES)]
        self._space_waiters: list[deque[asyncio.Future[None]]] = [deque() for _ in range(LANES)]
        self._conflate = conflate
        self._queued_by_topic: list[dict[str, InboxEntry]] = [{} for _ in range(LANES)]
        self.getter: asyncio.Future[None] | None = None
        """Set while the consumer waits for something to arrive, until it is woken."""
        self.held = False
        """A delivery outside the consumer has the turn (see :meth:`hold`)."""
        self.dropped = 0

    def __len__(self) -> int:
        return sum(len(lane) for lane in self.lanes)

    def depths(self) -> dict[str, int]:
        return {p.lane: len(self.lanes[p]) for p in MessagePriority}

    def conflates(self, topic: str) -> bool:
        return self._conflate is not None and self._conflate(topic)

    def put_nowait(self, item: Queued) -> bool:
        """Queue ``item``; False if its lane is full and its topic is not conflated."""
        message = message_of(item)
        priority = message.priority
        lane = self.lanes[priority]
        conflated = self.conflates(message.topic)
        if conflated and type(item) is Message:
            item = InboxEntry(item)  # a cell a newer value can take over in place
        if len(lane) >= self.lane_capacity:
            if not conflated:
                return False
            if self._replace_queued(priority, message):
                return True
            self._forget(priority, lane.popleft())
            self.dropped += 1
        lane.append(item)
        if conflated:
            self._queued_by_topic[priority][message.topic] = item  # type: ignore[assignment]
        self.arrived()
        return True

    async def put(self, item: Queued) -> None:
        """Queue ``item``, waiting while its lane is full; cancel it (a timeout) to give up."""
        priority = message_of(item).priority
        waiters = self._space_waiters[priority]
        while not self.put_nowait(item):
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

    def push(self, item: Queued) -> bool:
        """Queue ``item`` whatever the capacity: for an entry retried by the consumer (it holds
        one at a time, so a lane overshoots by at most one) or fetched from a durable queue
        by a reader that bounds its own fetches. A conflated topic with a newer message already
        queued is dropped instead (False): the latest value wins.
        """
        message = message_of(item)
        priority = message.priority
        topic = message.topic
        conflated = self.conflates(topic)
        if conflated:
            if topic in self._queued_by_topic[priority]:
                self.dropped += 1
                return False
            if type(item) is Message:
                item = InboxEntry(item)
            self._queued_by_topic[priority][topic] = item  # type: ignore[assignment]
        self.lanes[priority].append(item)
        self.arrived()
        return True

    def get_nowait(self) -> Queued | None:
        """The oldest item of the most urgent non-empty lane, or None if all are empty."""
        priority = self.most_urgent()
        if not priority:
            return None
        item = self.lanes[priority].popleft()
        self.taken(priority, item)
        self.freed(priority, 1)
        return item

    def most_urgent(self) -> int:
        """The priority of the most urgent non-empty lane (0 if all are empty)."""
        lanes = self.lanes
        for priority in _URGENT_FIRST:  # five checks per run of messages, not per message
            if lanes[priority]:
                return priority
        return 0

    def taken(self, priority: int, item: Queued) -> None:
        """Bookkeeping for ``item`` just popped from ``lanes[priority]``."""
        if type(item) is not Message and self._conflate is not None:
            self._forget(priority, item)

    def freed(self, priority: int, slots: int) -> None:
        """``slots`` were taken from ``lanes[priority]``: let as many waiting putters in.

        A consumer draining a batch without awaiting may call this once for the batch: no
        putter could have run before it yields anyway.
        """
        waiters = self._space_waiters[priority]
        while slots and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                slots -= 1

    def has_waiting_putters(self, priority: int) -> bool:
        return bool(self._space_waiters[priority])

    def arrived(self) -> None:
        """Something was queued: wake the consumer if it is waiting (and has the turn)."""
        if not self.held:
            self.wake()

    def hold(self) -> bool:
        """Take the consumer's turn if it is parked, so that a message can be handled at once
        by someone else: what arrives meanwhile waits until :meth:`release`. False (nothing
        taken) if the consumer is busy, woken, or something is queued: then queue it.
        """
        getter = self.getter
        if getter is None or getter.done() or self.held or any(self.lanes):
            return False
        self.held = True
        return True

    def release(self) -> None:
        """Give the turn back to the consumer, waking it for what arrived meanwhile."""
        self.held = False
        if any(self.lanes):
            self.arrived()

    async def wait(self) -> None:
        """Return once an entry may be available (or ``wake`` was called)."""
        if any(self.lanes):
            return
        getter = self.getter = asyncio.get_running_loop().create_future()
        try:
            await getter
        finally:
            self.getter = None

    @property
    def parked(self) -> bool:
        """Empty, and its consumer waiting in ``wait``: everything queued has been handled."""
        return self.getter is not None and not self.held and not any(self.lanes)

    def wake(self) -> None:
        """Make a pending ``wait`` return, e.g. so the consumer notices it is closing (even
        while held: a closing consumer must not wait for a turn it will never use)."""
        getter = self.getter
        if getter is not None:
            # Woken is no longer waiting: what arrives before the consumer runs skips this.
            self.getter = None
            if not getter.done():
                getter.set_result(None)

    def _wake_one_putter(self, priority: int) -> None:
        self.freed(priority, 1)

    def _replace_queued(self, priority: int, message: Message) -> bool:
        queued = self._queued_by_topic[priority].get(message.topic)
        if queued is None:
            return False
        queued.message = message
        queued.deliveries = 0
        self.dropped += 1
        return True

    def _forget(self, priority: int, item: Queued) -> None:
        message = message_of(item)
        by_topic = self._queued_by_topic[priority]
        if by_topic.get(message.topic) is item:
            del by_topic[message.topic]
