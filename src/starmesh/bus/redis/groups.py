"""An instance's membership of its engine's consumer group: joining, the backlog it takes
with it when it stops, and leaving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from starmesh.bus.redis import replies
from starmesh.bus.redis.replies import Entries
from starmesh.bus.redis.tasks import id_tuple

__all__ = ["Fetched", "backlog", "create_groups", "leave"]

Fetched = list[tuple[str, Entries]]
"""What one XREADGROUP returned: (stream, entries) pairs."""


async def create_groups(
    redis: aioredis.Redis, group: str, lanes: Sequence[str], reply: str
) -> None:
    """Create the group on every lane (from the start: nothing already queued is missed).

    The reply stream gets the group too, only so that MKSTREAM creates it: responders XADD to
    it with NOMKSTREAM, which tells a gone instance from a live one.
    """
    for stream in [*lanes, reply]:
        try:
            await redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def backlog(
    redis: aioredis.Redis, group: str, instance: str, lanes: Sequence[str], read_count: int
) -> AsyncIterator[Fetched]:
    """What the instance owns but has not handled, then the engine's backlog up to the newest
    entry of each lane now (not what keeps arriving meanwhile), one read at a time.
    """
    own: dict[Any, Any] = dict.fromkeys(lanes, "0")
    yield replies.streams(await redis.xreadgroup(group, instance, own))
    async with redis.pipeline(transaction=False) as pipe:
        for stream in lanes:
            pipe.xrevrange(stream, count=1)
        newest = [replies.entries(reply) for reply in await pipe.execute()]
    cutoff = {
        stream: id_tuple(last[0][0]) for stream, last in zip(lanes, newest, strict=True) if last
    }
    while cutoff:
        pending: dict[Any, Any] = dict.fromkeys(cutoff, ">")
        fetched = replies.streams(
            await redis.xreadgroup(group, instance, pending, count=read_count)
        )
        if not fetched:
            return
        yield fetched
        for stream, entries in fetched:
            if entries and id_tuple(entries[-1][0]) >= cutoff.get(stream, (0, 0)):
                cutoff.pop(stream, None)


async def leave(
    redis: aioredis.Redis, group: str, instance: str, lanes: Sequence[str], reply: str
) -> None:
    """Drop the instance from the group, and its reply stream (replies to it now fail fast)."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in lanes:
            pipe.xgroup_delconsumer(stream, group, instance)
        pipe.delete(reply)
        await pipe.execute()
