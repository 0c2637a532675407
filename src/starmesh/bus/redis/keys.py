"""The Redis key layout: one place, matching docs/wire-format.md.

Keys one command or script touches together share a hash tag, so they live in one Redis
Cluster slot: an engine's inbox lanes, reply streams and dead letters ``{<engine>}`` (the
engines spread over the masters), the registry ``{registry}`` (one script updates its three
keys), and everything the MarketData Hub writes ``{md}`` (each write checks the hub's lease
in the same script).
"""

from __future__ import annotations

from functools import cached_property

from starmesh.core.enums import EngineType, MessagePriority

__all__ = ["LANES_URGENT_FIRST", "Keys"]

LANES_URGENT_FIRST: tuple[MessagePriority, ...] = tuple(sorted(MessagePriority, reverse=True))


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def inbox(self, engine: EngineType, priority: MessagePriority) -> str:
        return f"{self.prefix}:{{{engine.value}}}:inbox:{priority.lane}"

    def inboxes(self, engine: EngineType) -> dict[MessagePriority, str]:
        """Every inbox lane of ``engine``, most urgent first."""
        return {priority: self.inbox(engine, priority) for priority in LANES_URGENT_FIRST}

    def dead_letters(self, engine: EngineType) -> str:
        return f"{self.prefix}:{{{engine.value}}}:dlq"

    def replies(self, engine: EngineType, instance: str) -> str:
        return f"{self.prefix}:{{{engine.value}}}:reply:{instance}"

    @cached_property
    def registry(self) -> str:
        return f"{self.prefix}:{{registry}}"

    @cached_property
    def registry_members(self) -> str:
        return f"{self.prefix}:{{registry}}:members"

    @cached_property
    def registry_version(self) -> str:
        return f"{self.prefix}:{{registry}}:version"

    @cached_property
    def control(self) -> str:
        return f"{self.prefix}:control"

    @cached_property
    def broadcast(self) -> str:
        return f"{self.prefix}:{{md}}:updates"

    def snapshot(self, topic: str) -> str:
        """``marketdata.quote.AAPL`` -> ``<prefix>:{md}:snapshot:quote:AAPL``."""
        _, data_type, symbol = topic.split(".", 2)
        return f"{self.prefix}:{{md}}:snapshot:{data_type}:{symbol}"

    @cached_property
    def snapshot_pattern(self) -> str:
        """Every snapshot key, as a SCAN MATCH pattern."""
        return f"{self.prefix}:{{md}}:snapshot:*"

    @cached_property
    def hub_lease(self) -> str:
        """The active hub's lease: ``<token> <instance>``, with a TTL it keeps renewing."""
        return f"{self.prefix}:{{md}}:lease"

    @cached_property
    def hub_fence(self) -> str:
        """The fencing counter: the last token (and epoch) given to a hub."""
        return f"{self.prefix}:{{md}}:fence"

    @cached_property
    def hub_streams(self) -> str:
        """The pairs the active hub streams, so that a successor streams them too."""
        return f"{self.prefix}:{{md}}:streams"

    @cached_property
    def hubs(self) -> str:
        """Every hub process, active or standby, with its last heartbeat."""
        return f"{self.prefix}:{{md}}:hubs"
