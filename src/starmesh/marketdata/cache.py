"""The hub's cache of snapshots: a TTL per data type, an LRU bound, and refresh-ahead.

An entry is *fresh* until its TTL runs out; after that it is only good as a stale answer when
its source fails. A *hot* entry (hit at least twice) in the last ``refresh_ahead`` fraction of
its TTL is due a background refresh, so callers keep hitting a fresh value instead of all
waiting for an upstream call at expiry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from starmesh.core.clock import Clock
from starmesh.core.enums import DataType
from starmesh.core.payloads import Snapshot
from starmesh.marketdata.source import DataRequest

__all__ = ["CacheEntry", "SnapshotCache"]

_HOT = 2


class CacheEntry:
    __slots__ = ("expires_at", "fetched_at", "hits", "refresh_at", "snapshot")

    def __init__(self, snapshot: Snapshot, fetched_at: float, ttl: float, refresh_ahead: float):
        self.snapshot = snapshot
        self.fetched_at = fetched_at
        self.expires_at = fetched_at + ttl
        self.refresh_at = self.expires_at - ttl * refresh_ahead
        self.hits = 0


class SnapshotCache:
    def __init__(
        self,
        ttl_for: Callable[[DataType], float],
        *,
        max_entries: int,
        refresh_ahead: float,
        clock: Clock,
    ) -> None:
        self._ttl_for = ttl_for
        self._max_entries = max_entries
        self._refresh_ahead = refresh_ahead
        self._clock = clock
        self._entries: OrderedDict[DataRequest, CacheEntry] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every value (a hub taking over numbers values anew)."""
        self._entries.clear()

    def get(self, key: DataRequest) -> CacheEntry | None:
        """The entry for ``key``, fresh or not (see :meth:`is_fresh`)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: DataRequest, snapshot: Snapshot) -> CacheEntry:
        entry = CacheEntry(
            snapshot, self._clock.monotonic(), self._ttl_for(key.data_type), self._refresh_ahead
        )
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1
        return entry

    def is_fresh(self, entry: CacheEntry) -> bool:
        return self._clock.monotonic() < entry.expires_at

    def due_for_refresh(self, entry: CacheEntry) -> bool:
        """Hot, still fresh, and in the last part of its life."""
        now = self._clock.monotonic()
        return entry.hits >= _HOT and entry.refresh_at <= now < entry.expires_at

    def age(self, entry: CacheEntry) -> float:
        return self._clock.monotonic() - entry.fetched_at
