"""A bounded memory of recently handled message ids."""

from __future__ import annotations

__all__ = ["DedupWindow"]


class DedupWindow:
    """Remembers the last ``size`` ids added; older ones are forgotten first."""

    __slots__ = ("_ids", "_size")

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("size must be positive")
        self._ids: dict[str, None] = {}
        self._size = size

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def add(self, message_id: str) -> None:
        ids = self._ids
        ids[message_id] = None
        if len(ids) > self._size:
            del ids[next(iter(ids))]

    def __len__(self) -> int:
        return len(self._ids)
