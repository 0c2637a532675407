"""Who subscribes to what, kept in Redis so every publisher can fan out on write.

``<prefix>:registry`` maps an engine type to the msgpack list of its patterns: the union over
its instances, each of which has an entry in ``<prefix>:registry:members`` (``engine/instance``
-> msgpack ``[last_seen_ms, [patterns]]``). One Lua script changes both atomically, bumps
``<prefix>:registry:version`` and announces the engine on ``<prefix>:control``.

Publishers cache the registry as a :class:`RoutingTable`. Pub/sub refreshes the cache at
once; the version, read in the same round trip as every publish, catches what pub/sub
missed, so a message published after ``subscribe`` returned anywhere is never unrouted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

import msgspec

from starmesh.core.enums import EngineType
from starmesh.core.topics import TopicMatcher

__all__ = ["REGISTER_SCRIPT", "RoutingTable", "member_value"]

logger = logging.getLogger(__name__)

REGISTER_SCRIPT = """
local members, registry, version = KEYS[1], KEYS[2], KEYS[3]
local engine, field, value = ARGV[1], ARGV[2], ARGV[3]
local now, ttl, channel = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if value == '' then
  redis.call('HDEL', members, field)
else
  redis.call('HSET', members, field, value)
end
local union, seen = {}, {}
local everyone = redis.call('HGETALL', members)
local mine = engine .. '/'
for i = 1, #everyone, 2 do
  local name = everyone[i]
  if string.sub(name, 1, #mine) == mine then
    local member = cmsgpack.unpack(everyone[i + 1])
    if now - member[1] > ttl then
      redis.call('HDEL', members, name)
    else
      for _, pattern in ipairs(member[2]) do
        if not seen[pattern] then
          seen[pattern] = true
          union[#union + 1] = pattern
        end
      end
    end
  end
end
table.sort(union)
if #union == 0 then
  redis.call('HDEL', registry, engine)
else
  redis.call('HSET', registry, engine, cmsgpack.pack(union))
end
local v = redis.call('INCR', version)
redis.call('PUBLISH', channel, engine)
return v
"""

_patterns = msgspec.msgpack.Decoder(list[str])


def member_value(patterns: Iterable[str]) -> bytes:
    """The registry:members value of an instance subscribed to ``patterns``, stamped now."""
    return msgspec.msgpack.encode([int(time.time() * 1000), list(patterns)])


class RoutingTable:
    """Topic -> subscribing engine types, from a snapshot of the registry hash."""

    def __init__(self) -> None:
        self.version = -1
        self._matcher: TopicMatcher[EngineType] = TopicMatcher()

    def load(self, registry: Mapping[bytes, bytes], version: int) -> None:
        matcher: TopicMatcher[EngineType] = TopicMatcher()
        for raw_engine, raw_patterns in registry.items():
            try:
                engine = EngineType(raw_engine.decode())
                patterns = _patterns.decode(raw_patterns)
            except (ValueError, msgspec.DecodeError) as exc:
                # Another version's engine, or a corrupted entry: route around it, loudly.
                logger.warning("ignoring registry entry %r: %s", raw_engine, exc)
                continue
            for pattern in patterns:
                matcher.add(pattern, engine)
        self._matcher = matcher
        self.version = version

    def engines(self, topic: str) -> tuple[EngineType, ...]:
        return self._matcher.match(topic)
