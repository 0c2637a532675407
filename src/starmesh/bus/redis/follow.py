"""Following a stream without a consumer group, from a position of one's own.

An instance follows two streams this way: its reply stream (replies to its requests) and the
market-data broadcast (every update; each instance reads at its own pace). Nothing is
acknowledged; the follower only remembers the last entry it saw. An entry that does not
decode is counted and skipped: one bad entry never stops the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starmesh.bus.redis.raw import Raw, raw_streams
from starmesh.bus.redis.resp import pack
from starmesh.core.codec import MessageCodec
from starmesh.core.errors import MessageDecodeError
from starmesh.core.message import Message

__all__ = ["Retrying", "follow_stream"]

logger = logging.getLogger(__name__)

Retrying = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""Runs a Redis call until it succeeds (the endpoint's reconnecting wrapper)."""


async def follow_stream(
    connection: Raw,
    stream: str,
    after: bytes,
    *,
    name: str,
    codec: MessageCodec,
    read_count: int,
    block_ms: int,
    retrying: Retrying,
    on_message: Callable[[bytes, Message], None],
    count: Callable[[str], None],
) -> None:
    """Hand every message added to ``stream`` after entry ``after`` to ``on_message(entry id,
    message)``, forever, reading on ``connection`` (closed at the end); an undecodable entry is
    counted as ``<name>_decode_errors``.
    """
    head = (b"XREAD", b"COUNT", str(read_count).encode(), b"BLOCK", str(block_ms).encode(),
            b"STREAMS", stream.encode())  # fmt: skip
    try:
        while True:
            read = partial(connection.one, pack(*head, after))
            for _stream, entries in raw_streams(await retrying(f"{name} read", read)):
                for entry_id, fields in entries:
                    after = entry_id
                    try:
                        message = codec.decode((fields or {}).get(b"m", b""))
                    except MessageDecodeError as exc:
                        count(f"{name}_decode_errors")
                        logger.warning("undecodable %s entry %r: %s", name, entry_id, exc)
                        continue
                    on_message(entry_id, message)
    finally:
        await connection.close()
