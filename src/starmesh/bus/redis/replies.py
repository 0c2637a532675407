"""Typed views of redis-py's stream replies (it types them loosely: bytes | str | None)."""

from __future__ import annotations

from typing import Any

__all__ = ["Entries", "as_bytes", "entries", "streams"]

Entries = list[tuple[bytes, dict[bytes, bytes] | None]]
"""(entry id, fields) pairs; fields is None for an entry trimmed while pending."""


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected bytes from Redis, got {type(value).__name__}")


def entries(reply: Any) -> Entries:
    """An XRANGE / XREVRANGE / XCLAIM reply."""
    return [(as_bytes(entry_id), fields) for entry_id, fields in reply or ()]


def streams(reply: Any) -> list[tuple[str, Entries]]:
    """An XREAD / XREADGROUP reply: per stream, its entries (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(as_bytes(name).decode(), entries(items)) for name, items in pairs]
