"""An instance's membership of its engine's consumer group: joining, the backlog it takes
with it when it stops, and leaving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.exceptions import ResponseError

from starmesh.bus.redis import replies
from starmesh.bus.redis.cluster import RedisClient
from starmesh.bus.redis.replies import Entries
from starmesh.bus.redis.tasks import id_tuple

__all__ = ["RENEW_SCRIPT", "Fetched", "backlog", "create_groups", "leave"]

Fetched = list[tuple[str, Entries]]
"""What one XREADGROUP returned: (stream, entries) pairs."""


async def create_groups(redis: RedisClient, group: str, lanes: Sequence[str], reply: str) -> None:
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
    redis: RedisClient, group: str, instance: str, lanes: Sequence[str], read_count: int
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


_LEAVE_SCRIPT = """
local group, consumer = ARGV[1], ARGV[2]
for _, lane in ipairs(KEYS) do
  if redis.call('EXISTS', lane) == 1 then
    local pending = redis.pcall('XPENDING', lane, group, '-', '+', 1, consumer)
    if type(pending) == 'table' and pending.err == nil and #pending == 0 then
      redis.call('XGROUP', 'DELCONSUMER', lane, group, consumer)
    end
  end
end
return 0
"""
"""Deletes the consumer from each lane where it holds nothing pending, atomically: XGROUP
DELCONSUMER drops a consumer's pending entries from the group for good, so a consumer that
still holds some stays until a live instance has claimed them."""

RENEW_SCRIPT = """
local group, consumer = ARGV[1], ARGV[2]
local renewed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1)
  if #pending == 1 and pending[1][2] == consumer then
    redis.call('XCLAIM', KEYS[1], group, consumer, 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""
"""Resets the idle time of entries a live instance holds (fetched, not yet handled) and still
owns: otherwise an instance with a long local backlog looks dead to the others, which then
claim and handle its entries a second time. Owner check and claim are one atomic step, so an
entry another instance has already claimed is left to it."""


async def leave(
    redis: RedisClient, group: str, instance: str, lanes: Sequence[str], reply: str
) -> None:
    """Leave the group where nothing is pending; delete the reply stream (replies to the
    instance now fail fast). Entries it holds pending stay claimable by the others.
    """
    await redis.eval(_LEAVE_SCRIPT, len(lanes), *lanes, group, instance)
    await redis.delete(reply)
