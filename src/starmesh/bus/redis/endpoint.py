"""One engine instance on Redis Streams: fetch, handle most urgent first, ack, reclaim.

Tasks per instance:

- the *reader* and the *urgent reader* (``readers.py``) XREADGROUP the engine's inbox lanes
  into a local priority buffer: the first waits for room once ``max_prefetch`` entries wait,
  the second blocks on the FLASH_CRASH and URGENT lanes alone, so Redis hands it an urgent
  message the moment it arrives, however big the fetched backlog;
- the *reply* follower (``follow.py``) hands each reply to the callback as it arrives;
- the *deliverer* hands the buffer's most urgent entry to the callback, retries a failed one
  up to ``max_deliveries`` attempts, then writes it to the dead-letter stream; it yields to
  the event loop every 0.2 ms of work so the readers keep up;
- the *acker* XACKs handled entries in batches, off the handling path, in the publisher's
  next pipeline (with the replies the handlers just sent);
- *upkeep* (``upkeep.py``) heartbeats the registry, reclaims entries other instances left
  pending longer than ``claim_idle_ms`` (XPENDING + XCLAIM), dead-letters entries delivered
  too often, and trims acknowledged entries (XTRIM MINID).

Market-data broadcast (``{md}:updates``) has one more task, started on the first subscription
that can match it: a plain XREAD from the instance's own position, no group, no acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from starmesh.bus.dedup import DedupWindow
from starmesh.bus.inbox import PriorityInbox
from starmesh.bus.redis import replies
from starmesh.bus.redis.follow import follow_stream
from starmesh.bus.redis.groups import backlog, create_groups, leave
from starmesh.bus.redis.publisher import NETWORK_ERRORS
from starmesh.bus.redis.readers import InboxReaders, StreamEntry
from starmesh.bus.redis.resp import pack
from starmesh.bus.redis.tasks import cancel_and_wait
from starmesh.bus.redis.upkeep import GroupUpkeep
from starmesh.bus.transport import DeliveryHandler, address_of
from starmesh.core.clock import now_ns
from starmesh.core.enums import EngineType
from starmesh.core.errors import (
    BusUnavailableError,
    MessageBusError,
    MessageDecodeError,
    NotHandledError,
)
from starmesh.core.message import Message
from starmesh.core.topics import TopicMatcher, literal_prefix, may_overlap, validate_pattern

if TYPE_CHECKING:
    from starmesh.bus.redis.transport import RedisTransport

__all__ = ["RedisEndpoint"]

logger = logging.getLogger(__name__)

_YIELD_AFTER_S = 0.000_2
"""The deliverer gives the event loop a turn at least this often while it has work."""


class RedisEndpoint:
    def __init__(
        self,
        transport: RedisTransport,
        engine: EngineType,
        instance: str,
        deliver: DeliveryHandler,
    ) -> None:
        self._transport = transport
        self._settings = settings = transport.settings
        self._redis = transport.client
        self._codec = transport.codec
        keys = transport.keys
        self.engine = engine
        self.instance = instance
        self._address = address_of(engine, instance)
        self._deliver = deliver
        self._group = engine.value
        self._lanes = keys.inboxes(engine)
        self._replies = keys.replies(engine, instance)
        self._dead_letter_key = keys.dead_letters(engine)
        self._all_streams = dict.fromkeys(self._lanes.values(), ">")
        self._broadcast_prefixes = tuple(p.rstrip("*") for p in transport.broadcast_patterns)
        self._buffer = PriorityInbox(
            settings.max_prefetch + settings.read_count * len(self._all_streams),
            conflate=transport.is_broadcast,
        )
        self._low_water = max(1, settings.max_prefetch // 2)
        self._room = asyncio.Event()
        self._in_flight: set[tuple[str, bytes]] = set()
        self._handled_ids = DedupWindow(settings.dedup_window)
        self._acks: dict[str, list[bytes]] = {}
        self._acks_waiting = asyncio.Event()
        self.patterns: list[str] = []
        self._matcher: TopicMatcher[bool] = TopicMatcher()
        """This instance's patterns."""
        self._broadcast_matcher: TopicMatcher[bool] = TopicMatcher()
        self._closing = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._detached: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.failed = 0
        self.not_handled = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self._readers = InboxReaders(
            transport=transport,
            group=self._group,
            instance=instance,
            lanes=self._lanes,
            buffer=self._buffer,
            room=self._room,
            low_water=self._low_water,
            in_flight=self._in_flight,
            ack=self._ack,
            dead_letter=self._write_dead_letter,
            retrying=self._retrying,
        )
        self._upkeep = GroupUpkeep(
            transport=transport,
            engine_instance=(self._group, instance),
            lanes=list(self._lanes.values()),
            replies_stream=self._replies,
            shared_patterns=self._shared_patterns,
            in_flight=self._in_flight,
            handles=self._handles,
            ack=self._ack,
            take=self._readers.take,
            dead_letter=self._write_dead_letter,
            register=lambda shared: transport.register(engine, instance, shared),
            retrying=self._retrying,
        )

    @property
    def address(self) -> str:
        return self._address

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        await self._create_groups()
        self._follow("reply", self._replies, await self._newest(self._replies), self._reply_arrived)
        self._spawn("deliverer", self._deliver_loop())
        self._spawn("acker", self._ack_loop())
        self._spawn("maintenance", self._upkeep.run())

    @property
    def consuming(self) -> bool:
        """Whether this instance takes its share of the engine's inbox.

        Only once it subscribes to a shared (not broadcast-only) pattern: an instance that only
        follows market data or makes requests must not take messages it has no handler for.
        """
        return "reader" in self._tasks

    def _shared_patterns(self) -> list[str]:
        return [p for p in self.patterns if not self._broadcast_only(p)]

    def _broadcast_only(self, pattern: str) -> bool:
        prefixes = self._broadcast_prefixes
        return bool(prefixes) and literal_prefix(pattern).startswith(prefixes)

    async def close(self) -> None:
        """Stop fetching, handle everything fetched and queued for this engine, ack, detach."""
        if self._closing:
            return
        self._closing = True
        consuming = self.consuming
        for name in ("reader", "urgent-reader", "reply", "broadcast", "maintenance"):
            await self._cancel(name)
        try:
            async with asyncio.timeout(self._settings.stop_timeout_s):
                if consuming:
                    with contextlib.suppress(*NETWORK_ERRORS, ResponseError):
                        await self._drain_backlog()
                self._buffer.wake()
                await asyncio.shield(self._tasks["deliverer"])
                self._acks_waiting.set()
                await asyncio.shield(self._tasks["acker"])
                with contextlib.suppress(*NETWORK_ERRORS, ResponseError):
                    await self._detach()
        except TimeoutError:
            # Redis is unreachable: what is not acknowledged stays pending there, owned by
            # this consumer, and a live instance reclaims it after claim_idle_ms.
            unacked = len(self._in_flight)  # handled ones too, until their XACK lands
            logger.warning(
                "%s stopped after %g s (STARMESH_STOP_TIMEOUT_S), a handler still running or "
                "Redis unreachable: %d entries left unacknowledged, to be reclaimed",
                self._address, self._settings.stop_timeout_s, unacked,
            )  # fmt: skip
            await self._cancel("deliverer")
            await self._cancel("acker")
        self._transport.forget_endpoint(self)

    async def subscribe(self, pattern: str) -> None:
        validate_pattern(pattern)
        if self._closing:
            raise MessageBusError(f"endpoint {self._address} is closed")
        if pattern in self.patterns:
            return
        self.patterns.append(pattern)
        self._matcher.add(pattern, True)
        if any(may_overlap(pattern, b) for b in self._transport.broadcast_patterns):
            # Only a pattern that can match an update follows the stream: the hub serving
            # marketdata.request.* would otherwise decode every update it publishes.
            self._broadcast_matcher.add(pattern, True)
            if "broadcast" not in self._tasks:
                broadcast = self._transport.keys.broadcast
                after = await self._newest(broadcast)
                self._follow("broadcast", broadcast, after, self._broadcast_arrived)
        if not self._broadcast_only(pattern):
            await self._transport.register(self.engine, self.instance, self._shared_patterns())
            if not self.consuming:
                self._spawn("reader", self._readers.read_loop())
                self._spawn("urgent-reader", self._readers.urgent_read_loop())

    async def unsubscribe(self, pattern: str) -> None:
        if pattern not in self.patterns:
            return
        self.patterns.remove(pattern)
        self._matcher.remove(pattern, True)
        self._broadcast_matcher.remove(pattern, True)
        if not self._broadcast_only(pattern):
            shared = self._shared_patterns()
            await self._transport.register(self.engine, self.instance, shared)
            if not shared:  # what it fetched and did not handle is reclaimed by the others
                await self._cancel("reader")
                await self._cancel("urgent-reader")
                del self._tasks["reader"], self._tasks["urgent-reader"]

    def stats(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "handler_failures": self.failed,
            "not_handled": self.not_handled,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "reclaimed": self._upkeep.reclaimed,
            "queued": len(self._buffer),
            "dropped": self._buffer.dropped,
        }

    # --- following: replies and broadcast ----------------------------------------------------

    async def _newest(self, stream: str) -> bytes:
        """The id of the newest entry of ``stream``: a reader without a group starts after it."""
        newest = replies.entries(await self._redis.xrevrange(stream, count=1))
        return newest[0][0] if newest else b"0-0"

    def _follow(
        self, name: str, stream: str, after: bytes, on_message: Callable[[bytes, Message], None]
    ) -> None:
        settings = self._settings
        self._spawn(
            name,
            follow_stream(
                self._transport.raw_commands(stream), stream, after, name=name, codec=self._codec,
                read_count=settings.read_count, block_ms=settings.block_ms,
                retrying=self._retrying, on_message=on_message, count=self._transport.count,
            ),
        )  # fmt: skip

    def _reply_arrived(self, _entry_id: bytes, message: Message) -> None:
        """Hand a reply over at once: it only wakes its requester (see the client), so it
        needs neither the priority buffer nor the deliverer's turn.
        """
        try:
            pending = self._deliver(message)
        except Exception:
            logger.exception("reply %s could not be delivered", message.id)
            return
        if pending is not None:  # not a plain reply after all: take the usual path
            self._spawn_detached(pending)

    def _spawn_detached(self, pending: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await pending
            except Exception:
                logger.exception("delivering a message from the reply stream failed")

        task = asyncio.create_task(run())
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)

    def _broadcast_arrived(self, entry_id: bytes, message: Message) -> None:
        if self._broadcast_matcher.match(message.topic):
            self._buffer.put_nowait(StreamEntry(message, None, entry_id))

    # --- handling ----------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        buffer = self._buffer
        deliver = self._deliver
        clock = asyncio.get_running_loop().time
        yield_at = clock() + _YIELD_AFTER_S
        while True:
            entry = buffer.get_nowait()
            if entry is None:
                if self._closing:
                    return
                self._room.set()
                await buffer.wait()
                yield_at = clock() + _YIELD_AFTER_S
                continue
            assert isinstance(entry, StreamEntry)
            if len(buffer) < self._low_water:
                self._room.set()
            if entry.message.id in self._handled_ids:
                # Handled here before: its ack was lost, or a publisher sent its batch again
                # (the copy may have been read with the original, so it is checked here).
                self.duplicates += 1
                self._settled(entry)
                continue
            try:
                pending = deliver(entry.message)
                if pending is not None:
                    await pending
            except NotHandledError:
                # Not for this instance (yet): leave it pending, unacknowledged. An instance
                # with a handler (maybe this one, once subscribed) reclaims it after
                # claim_idle_ms; after max_deliveries it becomes a dead letter.
                self.not_handled += 1
                if entry.stream is not None:
                    self._in_flight.discard((entry.stream, entry.entry_id))
            except Exception as exc:
                self.failed += 1
                entry.deliveries += 1
                if entry.deliveries < self._settings.max_deliveries:
                    buffer.push(entry)
                else:
                    reason = f"handling failed {entry.deliveries} times; last error: {exc!r}"
                    await self._dead_letter(entry, reason)
            else:
                self.delivered += 1
                self._handled_ids.add(entry.message.id)
                self._settled(entry)
            if clock() >= yield_at:
                # Handlers that never await would keep the readers from running: a FLASH_CRASH
                # message fetched meanwhile would wait. Yield on a time budget, not a count.
                await asyncio.sleep(0)
                yield_at = clock() + _YIELD_AFTER_S

    def _settled(self, entry: StreamEntry) -> None:
        # It stays in flight (renewed, never reclaimed by the others) until its XACK lands:
        # under load an acknowledgement can wait long enough for the entry to look idle.
        if entry.stream is not None:
            self._ack(entry.stream, entry.entry_id)

    def _ack(self, stream: str, entry_id: bytes) -> None:
        self._acks.setdefault(stream, []).append(entry_id)
        self._acks_waiting.set()

    async def _ack_loop(self) -> None:
        """XACK handled entries, in the publisher's next batch: a request's ack and its reply
        then travel in one round trip.
        """
        group = self._group.encode()
        while True:
            await self._acks_waiting.wait()
            self._acks_waiting.clear()
            if self._acks:
                acks, self._acks = self._acks, {}
                commands = [
                    pack(b"XACK", stream.encode(), group, *ids) for stream, ids in acks.items()
                ]
                try:
                    await self._transport.acknowledge(commands)
                    self._acknowledged(acks)
                except BusUnavailableError as exc:
                    # Put them back; if they never land, the entries are reclaimed and the
                    # dedup window keeps this instance from handling them twice.
                    for stream, ids in acks.items():
                        self._acks.setdefault(stream, [])[:0] = ids
                    self._transport.reachable(False, str(exc))
                    await asyncio.sleep(0.05)
                    self._acks_waiting.set()
                    continue
                except MessageBusError as exc:  # NOGROUP after a restart: nothing left to ack
                    logger.warning("%s: acks refused: %s", self._address, exc)
                    self._acknowledged(acks)
            if self._closing and self._tasks["deliverer"].done() and not self._acks:
                return

    def _acknowledged(self, acks: dict[str, list[bytes]]) -> None:
        in_flight = self._in_flight
        for stream, ids in acks.items():
            for entry_id in ids:
                in_flight.discard((stream, entry_id))

    async def _dead_letter(self, entry: StreamEntry, reason: str) -> None:
        if entry.stream is not None:
            self._in_flight.discard((entry.stream, entry.entry_id))
        raw = self._codec.encode(entry.message)
        await self._write_dead_letter(entry.stream, entry.entry_id, raw, reason)

    async def _write_dead_letter(
        self, stream: str | None, entry_id: bytes, raw: bytes, reason: str
    ) -> None:
        fields: dict[bytes | str, bytes | str | int] = {
            "m": raw,
            "reason": reason,
            "stream": stream or self._transport.keys.broadcast,
            "entry": entry_id,
            "ts_ns": now_ns(),
        }

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    self._dead_letter_key,
                    fields,  # type: ignore[arg-type]
                    maxlen=self._settings.dead_letter_capacity,
                    approximate=True,
                )
                if stream is not None:
                    pipe.xack(stream, self._group, entry_id)
                await pipe.execute()

        await self._retrying("dead letter", write)
        self.dead_lettered += 1
        self._transport.count("dead_lettered")
        if self.dead_lettered & (self.dead_lettered - 1) == 0:
            logger.warning("dead letter #%d for %s: %s", self.dead_lettered, self._address, reason)

    def _handles(self, raw: bytes) -> bool:
        """Whether this instance subscribes to the topic of ``raw`` (undecodable: yes, so that
        ``InboxReaders.take`` dead-letters it with the decode error).
        """
        try:
            topic = self._codec.decode(raw).topic
        except MessageDecodeError:
            return True
        return bool(self._matcher.match(topic))

    # --- setup and teardown ------------------------------------------------------------------

    async def _create_groups(self) -> None:
        await create_groups(self._redis, self._group, list(self._all_streams), self._replies)

    async def _drain_backlog(self) -> None:
        lanes = list(self._all_streams)
        read_count = self._settings.read_count
        async for fetched in backlog(self._redis, self._group, self.instance, lanes, read_count):
            await self._readers.take(fetched)

    async def _detach(self) -> None:
        await leave(
            self._redis, self._group, self.instance, list(self._lanes.values()), self._replies
        )

    # --- plumbing ----------------------------------------------------------------------------

    def _spawn(self, name: str, coroutine: Coroutine[Any, Any, None]) -> None:
        self._tasks[name] = asyncio.create_task(coroutine, name=f"starmesh:{self._address}:{name}")

    async def _cancel(self, name: str) -> None:
        task = self._tasks.get(name)
        if task is not None:
            await cancel_and_wait(task)

    async def _retrying(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``call`` until it succeeds: back off on network errors, recreate lost groups."""
        backoff = 0.05
        while True:
            try:
                result = await call()
            except NETWORK_ERRORS as exc:
                self._transport.reachable(False, f"{what}: {exc}")
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # The server lost our groups (restarted without persistence): recreate.
                    logger.warning("%s: consumer groups missing, recreating", self._address)
                    with contextlib.suppress(*NETWORK_ERRORS, ResponseError):
                        await self._create_groups()
                        if shared := self._shared_patterns():
                            await self._transport.register(self.engine, self.instance, shared)
                    continue
                logger.exception("%s failed for %s", what, self._address)
            else:
                self._transport.reachable(True, "")
                return result
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self._settings.reconnect_max_backoff_s)
