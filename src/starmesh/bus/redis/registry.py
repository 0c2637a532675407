"""Who subscribes to what, kept in Redis so every publisher can fan out on write.

``<prefix>:{registry}`` maps an engine type to the msgpack list of its patterns: the union over
its instances, each of which has an entry in ``<prefix>:{registry}:members`` (``engine/instance``
-> msgpack ``[last_seen_ms, [patterns]]``, with a third element, the instance's HTTP base URL,
when it serves ``POST /v1/messages``: where publishers deliver while Redis is down). One Lua
script changes both atomically, bumps ``<prefix>:{registry}:version`` and announces the engine
on ``<prefix>:control``.

Publishers cache the registry as a :class:`RoutingTable`. Pub/sub refreshes the cache at
once; the version, read in the same round trip as every publish, catches what pub/sub
missed, so a message published after ``subscribe`` returned anywhere is never unrouted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

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


def member_value(patterns: Iterable[str], http_url: str | None = None) -> bytes:
    """The {registry}:members value of an instance subscribed to ``patterns``, stamped now."""
    value: list[object] = [int(time.time() * 1000), list(patterns)]
    if http_url:
        value.append(http_url)
    return msgspec.msgpack.encode(value)


_member: msgspec.msgpack.Decoder[list[Any]] = msgspec.msgpack.Decoder(list[Any])


class RoutingTable:
    """Topic -> subscribing engine types, from a snapshot of the registry hash; and where each
    engine type's instances serve HTTP (its members' URLs, most recently seen first). The last
    snapshot stays in memory while Redis is away: it is what failover routes by.
    """

    def __init__(self, reset_grace_s: float = 60.0) -> None:
        self.version = -1
        self._matcher: TopicMatcher[EngineType] = TopicMatcher()
        self._urls: dict[EngineType, list[str]] = {}
        self._reset_grace_s = reset_grace_s
        self._before_reset: TopicMatcher[EngineType] | None = None
        self._grace_until = 0.0
        self.resets = 0

    @property
    def loaded(self) -> bool:
        return self.version >= 0

    def http_urls(self, engine: EngineType) -> list[str]:
        return self._urls.get(engine, [])

    def load_members(self, members: Mapping[bytes, bytes]) -> None:
        """Learn the HTTP URLs from ``<prefix>:{registry}:members``."""
        seen: dict[EngineType, list[tuple[int, str]]] = {}
        for raw_name, raw_value in members.items():
            try:
                engine = EngineType(raw_name.decode().partition("/")[0])
                member = _member.decode(raw_value)
            except (ValueError, msgspec.DecodeError):
                continue  # another version's entry: it only costs this engine an address
            if len(member) >= 3 and isinstance(member[0], int) and isinstance(member[2], str):
                seen.setdefault(engine, []).append((member[0], member[2]))
        self._urls = {
            engine: list(dict.fromkeys(url for _, url in sorted(found, reverse=True)))
            for engine, found in seen.items()
        }

    def load(self, registry: Mapping[bytes, bytes], version: int) -> None:
        if version < self.version:
            # The version went back: Redis lost its data (restarted without persistence).
            # Subscribers register again within a heartbeat; until then, route by what we
            # knew too, or messages published meanwhile would be dropped as unrouted.
            self.resets += 1
            self._before_reset = self._matcher
            self._grace_until = time.monotonic() + self._reset_grace_s
            logger.warning("the registry was reset (version %d -> %d)", self.version, version)
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
        found = self._matcher.match(topic)
        if self._before_reset is not None:
            if time.monotonic() < self._grace_until:
                return tuple(dict.fromkeys((*found, *self._before_reset.match(topic))))
            self._before_reset = None
        return found
