"""An instance's periodic upkeep of its engine's consumer group.

Every ``claim_idle_ms / 3`` (at most 5 s): a heartbeat (the registry entry of its shared
patterns, the expiry of its reply stream), the renewal of the entries it has fetched and not
yet handled (so a live instance with a local backlog is not taken for dead), and the
reclaiming of entries other instances left pending too long, when this instance handles
their topic; an entry delivered ``max_deliveries`` times, or that no instance takes for ten
claim periods, becomes a dead letter. Every tenth round, entries every instance has
acknowledged are trimmed (XTRIM MINID).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

from starmesh.bus.redis import replies
from starmesh.bus.redis.cluster import RedisClient
from starmesh.bus.redis.groups import RENEW_SCRIPT
from starmesh.bus.redis.registry import member_value
from starmesh.bus.redis.replies import Entries
from starmesh.bus.redis.tasks import next_id
from starmesh.core.config import Settings

if TYPE_CHECKING:
    from starmesh.bus.redis.transport import RedisTransport

__all__ = ["GroupUpkeep"]

logger = logging.getLogger(__name__)

_TRIM_EVERY = 10
"""Rounds between two XTRIM MINID passes."""
_ORPHAN_AFTER = 10
"""Pending this many claim_idle_ms with no instance taking it: a dead letter."""
_PENDING_PER_ROUND = 100
_RENEW_CHUNK = 1_000
"""Entry ids renewed per script call."""


class GroupUpkeep:
    def __init__(
        self,
        *,
        transport: RedisTransport,
        engine_instance: tuple[str, str],
        lanes: Collection[str],
        replies_stream: str,
        shared_patterns: Callable[[], list[str]],
        in_flight: Collection[tuple[str, bytes]],
        handles: Callable[[bytes], bool],
        ack: Callable[[str, bytes], None],
        take: Callable[[list[tuple[str, Entries]], dict[bytes, int]], Awaitable[None]],
        dead_letter: Callable[[str, bytes, bytes, str], Awaitable[None]],
        register: Callable[[list[str]], Awaitable[None]],
        retrying: Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]],
    ) -> None:
        self._transport = transport
        self._redis: RedisClient = transport.client
        self._settings: Settings = transport.settings
        self._group, self._instance = engine_instance
        self._address = f"{self._group}/{self._instance}"
        self._lanes = list(lanes)
        self._replies = replies_stream
        self._shared_patterns = shared_patterns
        self._in_flight = in_flight
        self._handles = handles
        self._ack = ack
        self._take = take
        self._dead_letter = dead_letter
        self._register = register
        self._retrying = retrying
        self._renew = self._redis.register_script(RENEW_SCRIPT)
        self.reclaimed = 0

    async def run(self) -> None:
        # A third of the idle time: an entry is renewed at least twice before it looks idle.
        interval = min(self._settings.claim_idle_ms / 3000, 5.0)
        round_ = 0
        while True:
            await asyncio.sleep(interval)
            round_ += 1
            await self._retrying("heartbeat", self.heartbeat)
            await self._retrying("renew", self.renew)
            await self._retrying("reclaim", self.reclaim)
            if round_ % _TRIM_EVERY == 0:
                await self._retrying("trim", self.trim)

    async def heartbeat(self) -> None:
        ttl_ms = max(60_000, 4 * self._settings.claim_idle_ms)
        shared = self._shared_patterns()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.pexpire(self._replies, ttl_ms)
            if shared:
                members = self._transport.keys.registry_members
                url = self._transport.http_urls.get(self._address)
                pipe.hset(members, self._address, member_value(shared, url))
            results = await pipe.execute()
        if shared and results[1] == 1:
            # Our member entry was gone: the server lost its data (a restart without
            # persistence). Subscribe again so publishers route to us.
            logger.warning("%s: registry entry was missing, registering again", self._address)
            await self._register(shared)

    async def renew(self) -> None:
        """Reset the idle time of the entries this instance holds and still owns."""
        by_stream: dict[str, list[bytes]] = {}
        for stream, entry_id in list(self._in_flight):
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            for start in range(0, len(ids), _RENEW_CHUNK):
                chunk = ids[start : start + _RENEW_CHUNK]
                await self._renew(keys=[stream], args=[self._group, self._instance, *chunk])

    async def reclaim(self) -> None:
        """Take over entries left pending too long that this instance handles."""
        idle = self._settings.claim_idle_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in self._lanes:
                pipe.xpending_range(stream, self._group, "-", "+", _PENDING_PER_ROUND, idle=idle)
            pending_by_lane = await pipe.execute()
        for stream, pending in zip(self._lanes, pending_by_lane, strict=True):
            candidates = [
                item
                for item in pending
                if not (
                    item["consumer"].decode() == self._instance
                    and (stream, item["message_id"]) in self._in_flight
                )
            ]
            if candidates:
                await self._reclaim_lane(stream, candidates)

    async def _reclaim_lane(self, stream: str, candidates: list[dict[str, Any]]) -> None:
        idle = self._settings.claim_idle_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in candidates:
                pipe.xrange(stream, item["message_id"], item["message_id"])
            contents = [replies.entries(reply) for reply in await pipe.execute()]
        to_claim: dict[bytes, int] = {}
        for item, found in zip(candidates, contents, strict=True):
            entry_id, delivered = item["message_id"], item["times_delivered"]
            raw = (found[0][1] or {}).get(b"m", b"") if found else b""
            if not found:  # trimmed while pending: nothing left to deliver
                self._ack(stream, entry_id)
            elif delivered >= self._settings.max_deliveries:
                reason = f"delivered {delivered} times without being acknowledged (instances died?)"
                await self._dead_letter(stream, entry_id, raw, reason)
            elif self._handles(raw):
                to_claim[entry_id] = delivered
            elif item["time_since_delivered"] >= _ORPHAN_AFTER * idle:
                reason = f"no instance of {self._group} handled it within {_ORPHAN_AFTER * idle} ms"
                await self._dead_letter(stream, entry_id, raw, reason)
        if to_claim:
            claimed = replies.entries(
                await self._redis.xclaim(stream, self._group, self._instance, idle, list(to_claim))
            )
            self.reclaimed += len(claimed)
            await self._take([(stream, claimed)], to_claim)

    async def trim(self) -> None:
        """Drop entries every instance of the engine has acknowledged (XTRIM MINID)."""
        for stream in self._lanes:
            groups = await self._redis.xinfo_groups(stream)
            ours = [g for g in groups if g["name"].decode() == self._group]
            if not ours:
                continue
            summary = await self._redis.xpending(stream, self._group)
            oldest_unacked = summary["min"] if summary["pending"] else None
            boundary = oldest_unacked or next_id(ours[0]["last-delivered-id"])
            await self._redis.xtrim(stream, minid=boundary, approximate=True)
