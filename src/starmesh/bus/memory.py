"""The embedded transport: every engine in one process, no server.

Each endpoint (:mod:`starmesh.bus.memory_endpoint`) owns a :class:`PriorityInbox` and one
consumer task that hands messages to the endpoint's callback, most urgent first. Publishing
routes by pattern (cached per topic) to
each subscribing engine type and, within a type, round-robin to an instance whose patterns
match; a broadcast topic goes to every matching instance. Publishers wait while a lane is
full, up to ``publish_timeout``, except on conflated (latest-wins) topics.

A FLASH_CRASH message is the exception to queueing: an endpoint whose consumer is parked
handles it inside ``publish`` (see :meth:`MemoryEndpoint.deliver_at_once`). An endpoint told
to (:meth:`MemoryEndpoint.handle_at_once`) handles every message so, e.g. the crash detector's
quotes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import NamedTuple

from starmesh.bus.inbox import LANES, InboxEntry, PriorityInbox, Queued, message_of
from starmesh.bus.memory_endpoint import MemoryEndpoint
from starmesh.bus.transport import (
    DeadLetter,
    DeliveryHandler,
    RunDeliveryHandler,
    TransportHealth,
    address_of,
    validate_instance,
)
from starmesh.core.clock import now_ns
from starmesh.core.codec import MessageCodec
from starmesh.core.enums import EngineType, MessagePriority
from starmesh.core.errors import ConfigurationError, MessageBusError
from starmesh.core.message import Message
from starmesh.core.topics import TopicMatcher, validate_topic

__all__ = ["MemoryEndpoint", "MemoryTransport"]

logger = logging.getLogger(__name__)

_PLAN_CACHE_SIZE = 65_536
_PLANNED_AHEAD_LIMIT = 64
_AT_ONCE = MessagePriority.FLASH_CRASH
"""Handled inside ``publish`` by every idle subscriber (see ``MemoryEndpoint.deliver_at_once``)."""


class _EngineGroup:
    """The instances of one engine type, each under the patterns it subscribed."""

    __slots__ = ("engine", "instances", "next_pick")

    def __init__(self, engine: EngineType) -> None:
        self.engine = engine
        self.instances: TopicMatcher[MemoryEndpoint] = TopicMatcher()
        self.next_pick = 0


class _Plan(NamedTuple):
    """Where a topic's messages go."""

    engines: int
    """How many engine types subscribe (what ``publish`` returns)."""
    every: tuple[MemoryEndpoint, ...]
    """Each gets every message: the only instance of its engine type, or a broadcast topic."""
    lanes: tuple[tuple[tuple[MemoryEndpoint, PriorityInbox, deque[Queued]], ...], ...] | None
    """Per priority, ``every`` with its inbox and lane of that priority, for the plain path:
    None when one of them handles every message at once or the topic is conflated (then each
    goes through the general path)."""
    shared: tuple[tuple[_EngineGroup, tuple[MemoryEndpoint, ...]], ...]
    """Engine types whose matching instances take turns, with those instances."""


class MemoryTransport:
    """In-process bus. One per event loop is shared by every embedded client (see ``embedded``)."""

    def __init__(
        self,
        name: str = "memory",
        *,
        lane_capacity: int = 10_000,
        publish_timeout: float = 5.0,
        max_deliveries: int = 3,
        dead_letter_capacity: int = 10_000,
        broadcast_patterns: Sequence[str] = (),
        conflated_patterns: Sequence[str] = (),
        codec: MessageCodec | None = None,
    ) -> None:
        if lane_capacity <= 0 or publish_timeout <= 0 or max_deliveries <= 0:
            raise ConfigurationError(
                "lane_capacity, publish_timeout and max_deliveries must be positive"
            )
        self._name = name
        # Encoding every message, though nothing leaves the process, makes the embedded bus
        # reject exactly what Redis would (unserialisable or oversized payloads).
        self._codec = codec
        self._lane_capacity = lane_capacity
        self._publish_timeout = publish_timeout
        self._max_deliveries = max_deliveries
        self._dead_letter_capacity = dead_letter_capacity
        self._broadcast = _pattern_set(broadcast_patterns)
        self._conflated = _pattern_set(conflated_patterns)
        self._routes: TopicMatcher[_EngineGroup] = TopicMatcher()
        self._plans: OrderedDict[str, _Plan] = OrderedDict()
        """Per topic, where its messages go; dropped on every subscription change."""
        self._planned_ahead: dict[str, None] = {}
        """Topics routed again at every subscription change (see ``plan_ahead``)."""
        self._groups: dict[EngineType, _EngineGroup] = {}
        self._endpoints: dict[str, MemoryEndpoint] = {}
        self._dead: dict[EngineType, deque[DeadLetter]] = {}
        self._running = False
        self._published = 0
        self._unrouted = 0
        self._redelivered = 0
        self._dead_lettered = 0
        self._undeliverable = 0
        self._not_handled = 0
        self._retired_delivered = 0
        self._retired_failed = 0
        self._retired_dropped = 0

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*(endpoint.close() for endpoint in list(self._endpoints.values())))

    async def open_endpoint(
        self,
        engine: EngineType,
        instance: str,
        deliver: DeliveryHandler,
        *,
        deliver_run: RunDeliveryHandler | None = None,
    ) -> MemoryEndpoint:
        if not self._running:
            raise MessageBusError(f"transport {self._name!r} is not running")
        address = address_of(engine, validate_instance(instance))
        if address in self._endpoints:
            raise MessageBusError(
                f"instance {address} is already attached to {self._name!r}; "
                "give each client its own instance name"
            )
        conflated = self._conflated
        inbox = PriorityInbox(
            self._lane_capacity,
            conflate=(lambda topic: bool(conflated.match(topic))) if conflated else None,
        )
        endpoint = MemoryEndpoint(self, engine, instance, deliver, inbox, deliver_run)
        self._endpoints[address] = endpoint
        return endpoint

    async def publish(self, message: Message) -> int:
        if not self._running:
            raise MessageBusError(f"transport {self._name!r} is not running")
        if self._codec is not None:
            self._codec.validate(message)
        self._published += 1
        plan = self._plans.get(message.topic)
        if plan is None:
            plan = self._plan(message.topic)
        if not plan.engines:
            self._unrouted += 1
            return 0
        priority = int(message.priority)  # an exact int indexes and compares fastest
        capacity = self._lane_capacity
        lanes = plan.lanes
        if lanes is not None and priority != _AT_ONCE:
            for endpoint, inbox, lane in lanes[priority]:
                # The message itself goes in the lane: nothing allocated per delivery.
                if len(lane) >= capacity:
                    await self._enqueue(endpoint, message)
                    continue
                lane.append(message)
                if inbox.getter is not None:
                    inbox.arrived()
        else:
            at_once = priority == _AT_ONCE
            for endpoint in plan.every:
                if (at_once or endpoint.always_at_once) and endpoint.deliver_at_once(message):
                    continue
                await self._enqueue(endpoint, message)
        for group, instances in plan.shared:
            await self._enqueue_shared(group, instances, message)
        return plan.engines

    async def send(self, address: str, message: Message) -> bool:
        if self._codec is not None:
            self._codec.validate(message)
        endpoint = self._endpoints.get(address)
        if endpoint is None:
            self._undeliverable += 1
            return False
        # Delivered at once, not queued: the reply path. A handler that awaits a reply holds
        # its endpoint's turn, so a queued reply would wait behind the handler waiting for it.
        try:
            pending = endpoint._deliver(message)
            if pending is not None:
                await pending
        except Exception:
            self._undeliverable += 1
            logger.exception("delivering a direct message to %s failed", address)
            return False
        endpoint.delivered += 1
        return True

    async def dead_letters(self, engine: EngineType, limit: int = 100) -> list[DeadLetter]:
        letters = self._dead.get(engine, ())
        return list(reversed(letters))[:limit]

    def plan_ahead(self, topic: str) -> None:
        """Route ``topic`` now and after every subscription change, so that its first message
        does not pay for matching it against every pattern (tens of µs: most of a crash
        alert's way to Strategy once its handling is immediate)."""
        validate_topic(topic)
        if topic not in self._planned_ahead and len(self._planned_ahead) >= _PLANNED_AHEAD_LIMIT:
            raise ConfigurationError(
                f"at most {_PLANNED_AHEAD_LIMIT} topics are planned ahead; {topic!r} is one more"
            )
        self._planned_ahead[topic] = None
        self._plan(topic)

    def idle(self) -> bool:
        """Every endpoint has handled all that was queued for it and waits for more."""
        return all(endpoint.inbox.parked for endpoint in self._endpoints.values())

    def health(self) -> TransportHealth:
        detail = f"{len(self._endpoints)} endpoints" if self._running else "stopped"
        return TransportHealth(transport=self._name, healthy=self._running, detail=detail)

    def stats(self) -> dict[str, int]:
        endpoints = self._endpoints.values()
        return {
            "published": self._published,
            "unrouted": self._unrouted,
            "delivered": self._retired_delivered + sum(e.delivered for e in endpoints),
            "handler_failures": self._retired_failed + sum(e.failed for e in endpoints),
            "not_handled": self._not_handled,
            "redelivered": self._redelivered,
            "dead_lettered": self._dead_lettered,
            "dropped": self._retired_dropped + sum(e.inbox.dropped for e in endpoints),
            "undeliverable": self._undeliverable,
            "queued": sum(len(e.inbox) for e in endpoints),
            "endpoints": len(self._endpoints),
        }

    # --- internals used by endpoints ---------------------------------------------------------

    def _plans_changed(self) -> None:
        self._plans.clear()
        for topic in self._planned_ahead:
            self._plan(topic)

    def _plan(self, topic: str) -> _Plan:
        broadcast = bool(self._broadcast.match(topic))
        groups = self._routes.match(topic)
        every: list[MemoryEndpoint] = []
        shared = []
        for group in groups:
            instances = group.instances.match(topic)
            if broadcast or len(instances) <= 1:
                every.extend(instances)
            else:
                shared.append((group, instances))
        if len(self._plans) >= _PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        conflated = bool(self._conflated.match(topic))
        plain = not conflated and not any(endpoint.always_at_once for endpoint in every)
        lanes = (
            tuple(
                tuple(
                    (endpoint, endpoint.inbox, endpoint.inbox.lanes[priority]) for endpoint in every
                )
                for priority in range(LANES)
            )
            if plain
            else None
        )
        plan = _Plan(len(groups), tuple(every), lanes, tuple(shared))
        self._plans[topic] = plan
        return plan

    async def _enqueue_shared(
        self, group: _EngineGroup, instances: tuple[MemoryEndpoint, ...], message: Message
    ) -> None:
        count = len(instances)
        first = group.next_pick
        group.next_pick = first + 1
        # Round robin, skipping instances whose lane is full; wait on our turn's if all are.
        for step in range(count):
            if instances[(first + step) % count].inbox.put_nowait(message):
                return
        await self._put_waiting(instances[first % count], message)

    async def _enqueue(self, endpoint: MemoryEndpoint, item: Queued) -> None:
        if not endpoint.inbox.put_nowait(item):
            await self._put_waiting(endpoint, item)

    async def _put_waiting(self, endpoint: MemoryEndpoint, item: Queued) -> None:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await endpoint.inbox.put(item)
        except TimeoutError:
            lane = message_of(item).priority.lane
            raise MessageBusError(
                f"{endpoint.address} has had its {lane} lane full "
                f"({self._lane_capacity:,} messages) for {self._publish_timeout:g} s: it is not "
                "keeping up. Make its handlers faster, run another instance, or raise "
                "STARMESH_LANE_CAPACITY"
            ) from None

    def _add_route(self, endpoint: MemoryEndpoint, pattern: str) -> None:
        group = self._groups.get(endpoint.engine)
        if group is None:
            group = self._groups[endpoint.engine] = _EngineGroup(endpoint.engine)
        group.instances.add(pattern, endpoint)
        self._routes.add(pattern, group)
        self._plans_changed()

    def _remove_route(self, endpoint: MemoryEndpoint, pattern: str) -> None:
        group = self._groups[endpoint.engine]
        group.instances.remove(pattern, endpoint)
        if pattern not in group.instances.patterns():
            self._routes.remove(pattern, group)
        self._plans_changed()

    def _forget_endpoint(self, endpoint: MemoryEndpoint) -> None:
        if self._endpoints.get(endpoint.address) is endpoint:
            del self._endpoints[endpoint.address]
            self._retired_delivered += endpoint.delivered
            self._retired_failed += endpoint.failed
            self._retired_dropped += endpoint.inbox.dropped

    def _delivery_failed(self, endpoint: MemoryEndpoint, item: Queued, exc: Exception) -> None:
        # Only now does the delivery get an entry of its own, to count its attempts.
        entry = item if type(item) is InboxEntry else InboxEntry(message_of(item))
        entry.deliveries += 1
        if entry.deliveries < self._max_deliveries:
            if endpoint.inbox.push(entry):
                self._redelivered += 1
            return
        reason = f"handling failed {entry.deliveries} times; last error: {exc!r}"
        letters = self._dead.get(endpoint.engine)
        if letters is None:
            letters = self._dead[endpoint.engine] = deque(maxlen=self._dead_letter_capacity)
        letters.append(
            DeadLetter(engine=endpoint.engine, reason=reason, ts_ns=now_ns(), message=entry.message)
        )
        self._dead_lettered += 1
        if (
            self._dead_lettered & (self._dead_lettered - 1) == 0
        ):  # 1st, 2nd, 4th, ... : bounded logs
            logger.warning(
                "dead letter #%d for %s on %r: %s",
                self._dead_lettered,
                endpoint.address,
                entry.message.topic,
                reason,
            )


def _pattern_set(patterns: Sequence[str]) -> TopicMatcher[bool]:
    matcher: TopicMatcher[bool] = TopicMatcher()
    for pattern in patterns:
        matcher.add(pattern, True)
    return matcher
