"""Mesh failover: the Engine Logic Bus, else HTTP straight to the subscribing engines, else the
local outbox, replayed in order when the bus returns.

``publish`` tries Redis for at most ``STARMESH_FAILOVER_AFTER_S``. If Redis does not take the
message (or is known to be down, or the outbox still holds older messages, which must go
first), the message goes into the outbox, one entry per subscribing engine of the last known
registry, and ``publish`` returns: the message is promised. A drainer then delivers the outbox:

- to Redis (each entry to its engine's inbox only) once a health check finds it back;
- meanwhile over HTTP to each engine's ``POST /v1/messages`` (the instance URLs the registry
  last listed, then ``STARMESH_HTTP_PEERS``), one sender per engine so a slow engine delays
  nobody else, each in order: most urgent first, publish order within a priority.

Health checks back off with jitter; every change of a path's state is logged once and counted
(``paths.py``). Receivers drop a copy by message id (``once.py``), so a message delivered over
HTTP whose answer was lost and later replayed into Redis is handled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from starmesh.bus.http import DeliveryRefused, HttpAuth, HttpEgress
from starmesh.bus.redis import RedisTransport
from starmesh.bus.redis.tasks import cancel_and_wait
from starmesh.client.outbox import Outbox, OutboxEntry
from starmesh.client.outbox_store import OutboxStore
from starmesh.client.paths import Backoff, PathHealth
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.core.errors import BusUnavailableError, MessageBusError
from starmesh.core.message import Message

__all__ = ["MeshFailover"]

logger = logging.getLogger("starmesh.failover")

_BATCH = 256
"""Entries per HTTP request or Redis replay round."""


class MeshFailover:
    def __init__(self, transport: RedisTransport, settings: Settings, auth: HttpAuth) -> None:
        self._transport = transport
        self._settings = settings
        self._codec = transport.codec
        store = OutboxStore(settings.outbox_path) if settings.outbox_path else None
        self.outbox = Outbox(settings.outbox_capacity, transport.codec, store)
        self._egress = HttpEgress(auth, timeout=settings.http_timeout_s)
        self.bus = PathHealth("bus")
        self.http = PathHealth("http")
        self._peer_health: dict[EngineType, PathHealth] = {}
        self._senders: dict[EngineType, asyncio.Task[None]] = {}
        self._batch_sizes: dict[EngineType, int] = {}
        self._drainer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._probe_backoff = Backoff(0.05, settings.reconnect_max_backoff_s)
        self._next_probe = 0.0
        self._max_body = settings.http_max_body_bytes
        self.counts = {"failed_over": 0, "replayed": 0, "sent_over_http": 0, "unrouted": 0}

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        kept = await self.outbox.open()
        if kept:
            logger.warning("outbox: %d messages kept from a previous run, delivering them", kept)
            self.bus.failed("outbox holds messages from a previous run")
        self._drainer = asyncio.create_task(self._drain(), name="starmesh-outbox-drainer")

    async def close(self, timeout: float) -> None:
        """Try to empty the outbox for up to ``timeout`` s; then keep (file) or report the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.outbox) and loop.time() < deadline:
            self._wake.set()
            await asyncio.sleep(0.01)
        for task in [*self._senders.values(), *([self._drainer] if self._drainer else [])]:
            await cancel_and_wait(task)
        left = len(self.outbox)
        if left and self.outbox.persistent:
            logger.warning(
                "outbox: %d entries undelivered at stop, kept in %s for the next start",
                left, self._settings.outbox_path,
            )  # fmt: skip
        elif left:
            logger.error(
                "outbox: %d entries undelivered at stop and LOST with this process (set "
                "STARMESH_OUTBOX_PATH to keep them): message ids %s",
                left, ", ".join(self.outbox.pending()),
            )  # fmt: skip
        self.counts["lost_at_stop"] = 0 if self.outbox.persistent else left
        await self.outbox.close()
        await self._egress.aclose()

    # --- publishing --------------------------------------------------------------------------

    @property
    def to_redis(self) -> bool:
        """Whether a publish now goes straight to Redis (queued in its first step), not to
        the outbox."""
        return not len(self.outbox) and self.bus.state == "up"

    async def publish(self, message: Message) -> int:
        """Into Redis, else into the outbox; how many engine types it is routed to."""
        if self.to_redis:
            started = time.perf_counter()
            try:
                routed = await self._transport.publish(
                    message, timeout=self._settings.failover_after_s
                )
            except BusUnavailableError as exc:
                self.bus.failed(str(exc))
                self._next_probe = 0.0
            else:
                self.bus.succeeded(time.perf_counter() - started)
                return routed
        return await self._queue(message)

    async def _queue(self, message: Message) -> int:
        routing = self._transport.routing
        targets: list[EngineType | None] = (
            list(routing.engines(message.topic)) if routing.loaded else [None]
        )
        if not targets:
            self.counts["unrouted"] += 1  # nobody subscribed, as far as we last knew
            return 0
        data = self._codec.encode(message)
        await self.outbox.put(message, data, targets, self._settings.publish_timeout)
        self.counts["failed_over"] += 1
        self._wake.set()
        return len(targets)

    # --- draining ----------------------------------------------------------------------------

    async def _drain(self) -> None:
        idle = Backoff(0.01, self._settings.reconnect_max_backoff_s)
        while True:
            if not len(self.outbox) and self.bus.state == "up":
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._check_bus()  # also with an empty outbox: back to the bus when it is up
            progressed = False
            if self.bus.state == "up":
                progressed = await self._replay()
            if self.bus.state != "up":
                self._start_senders()
            if progressed:
                idle.reset()
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle.next()):
                    await self._wake.wait()

    async def _check_bus(self) -> None:
        """While the bus is down: PING it, backing off with jitter between checks."""
        loop = asyncio.get_running_loop()
        if self.bus.state == "up" or loop.time() < self._next_probe:
            return
        started = time.perf_counter()
        if await self._transport.ping(self._settings.failover_after_s):
            self._probe_backoff.reset()
            self.bus.succeeded(time.perf_counter() - started)
        else:
            self._next_probe = loop.time() + self._probe_backoff.next()

    async def _replay(self) -> bool:
        """Write a round of outbox entries to Redis, each to its engine's inbox; True when some
        were written. Engines with an HTTP delivery under way wait for the next round."""
        batch: list[OutboxEntry] = []
        for target in self.outbox.targets():
            if target is None or target not in self._senders:
                batch += self.outbox.heads(target, _BATCH, self._max_body)
        if not batch:
            return False
        timeout = self._settings.failover_after_s
        started = time.perf_counter()
        try:
            # Submitted in one tick: one pipeline, entries written in this order.
            await asyncio.gather(
                *(
                    self._transport.publish(e.message, timeout=timeout)
                    if e.target is None
                    else self._transport.deliver_to(e.message, [e.target], timeout=timeout)
                    for e in batch
                )
            )
        except BusUnavailableError as exc:
            self.bus.failed(str(exc))
            return False
        except MessageBusError as exc:  # refused by Redis (an ACL, say): try again later
            logger.error("outbox: Redis refused a replay: %s", exc)
            return False
        self.bus.succeeded(time.perf_counter() - started)
        self.counts["replayed"] += len(batch)
        await self.outbox.remove(batch)
        return True

    def _start_senders(self) -> None:
        for target in self.outbox.targets():
            if target is not None and target not in self._senders:
                task = asyncio.create_task(self._send_over_http(target), name=f"http-to:{target}")
                self._senders[target] = task
                task.add_done_callback(functools.partial(self._sender_done, target))

    def _sender_done(self, target: EngineType, _: asyncio.Task[None]) -> None:
        self._senders.pop(target, None)
        self._wake.set()

    async def _send_over_http(self, target: EngineType) -> None:
        """One batch of ``target``'s entries over HTTP, to the first instance that takes it.

        The answer comes once the batch is handled: for a slow engine, a batch that timed out
        is halved for the next try (the copies it already handled it drops by id), and grows
        again while batches get through."""
        size = self._batch_sizes.get(target, _BATCH)
        batch = self.outbox.heads(target, size, self._max_body)
        if not batch:
            return
        health = self._peer_health.setdefault(target, PathHealth(f"http:{target.value}"))
        urls = self._urls(target)
        if not urls:
            health.failed("no HTTP address known (registry, STARMESH_HTTP_PEERS)")
            self._http_summary()
            await asyncio.sleep(self._settings.reconnect_max_backoff_s)
            return
        errors = []
        for url in urls:
            started = time.perf_counter()
            try:
                accepted = await self._egress.deliver(url, [e.data for e in batch])
            except DeliveryRefused as exc:
                accepted = exc.accepted
                errors.append(str(exc))
                if exc.timed_out:
                    self._batch_sizes[target] = max(1, len(batch) // 2)
            else:
                health.succeeded(time.perf_counter() - started)
                self._batch_sizes[target] = min(_BATCH, size * 2)
            if accepted:
                self.counts["sent_over_http"] += accepted
                await self.outbox.remove(batch[:accepted])
                if accepted == len(batch):
                    self._http_summary()
                    return
                batch = batch[accepted:]
        health.failed("; ".join(errors))
        self._http_summary()
        await asyncio.sleep(self._probe_backoff.next())

    def _urls(self, target: EngineType) -> list[str]:
        found = list(self._transport.routing.http_urls(target))
        static = self._settings.http_peers.get(target)
        if static and static not in found:
            found.append(static)
        return found

    def _http_summary(self) -> None:
        states = {h.state for h in self._peer_health.values()}
        if states == {"up"}:
            self.http.succeeded()
        elif "up" in states:
            self.http.failed("some engines unreachable over HTTP", partly=True)
        else:
            errors = [h.last_error for h in self._peer_health.values() if h.last_error]
            self.http.failed(errors[-1] if errors else "unreachable")

    # --- visibility --------------------------------------------------------------------------

    @property
    def route(self) -> str:
        """Where a publish goes now: ``bus``, ``http`` (the bus is down, HTTP delivers) or
        ``outbox`` (nothing delivers: messages wait)."""
        if self.bus.state == "up" and not len(self.outbox):
            return "bus"
        if self.bus.state != "up" and self.http.state != "down" and self._peer_health:
            return "http"
        return "outbox" if len(self.outbox) else "bus"

    def status(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "paths": {
                "bus": self.bus.report(),
                "http": {
                    **self.http.report(),
                    "peers": {e.value: h.report() for e, h in self._peer_health.items()},
                },
            },
            "outbox": {
                "depth": len(self.outbox),
                "capacity": self.outbox.capacity,
                "persistent": self.outbox.persistent,
                "added": self.outbox.added,
                "delivered": self.outbox.delivered,
            },
            **self.counts,
        }
