"""Reading who is on a bus from the registry: every instance, its last heartbeat, its
subscriptions and its HTTP address. Nothing is joined and nothing written: what ``starmesh
status`` and a supervisor use to see a deployment from outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from starmesh.bus.redis.cluster import RedisClient
from starmesh.bus.redis.keys import Keys
from starmesh.core.enums import EngineType

__all__ = ["Member", "parse_members", "read_members"]

_member: msgspec.msgpack.Decoder[list[Any]] = msgspec.msgpack.Decoder(list[Any])


class Member(msgspec.Struct, frozen=True):
    engine: EngineType
    instance: str
    last_seen_ms: int
    """When the instance last renewed its entry (every few seconds while it runs)."""
    patterns: list[str]
    http_url: str | None = None


def parse_members(raw: Mapping[bytes, bytes]) -> list[Member]:
    """The entries of ``<prefix>:{registry}:members`` this version understands, sorted."""
    members = []
    for raw_name, raw_value in raw.items():
        engine_name, _, instance = raw_name.decode(errors="replace").partition("/")
        try:
            engine = EngineType(engine_name)
            value = _member.decode(raw_value)
        except (ValueError, msgspec.DecodeError):
            continue  # another version's entry, or damaged: not this reader's to judge
        if len(value) < 2 or not isinstance(value[0], int) or not isinstance(value[1], list):
            continue
        url = value[2] if len(value) >= 3 and isinstance(value[2], str) else None
        patterns = [p for p in value[1] if isinstance(p, str)]
        members.append(Member(engine, instance, value[0], patterns, url))
    return sorted(members, key=lambda m: (m.engine.value, m.instance))


async def read_members(client: RedisClient, prefix: str) -> list[Member]:
    """The registry's members (``client`` must not decode responses)."""
    raw = await client.hgetall(Keys(prefix).registry_members)
    return parse_members({_bytes(k): _bytes(v) for k, v in raw.items()})


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
