"""Hand-packed RESP for the publisher's hot commands.

redis-py's pipeline spends most of its time in Python building each command; packing an XADD
directly is about twice as fast end to end (measured: 209k vs 97k XADD/s pipelined by 200 on
one connection), and publishing is where a bus spends its CPU.
"""

from __future__ import annotations

__all__ = ["XaddPacker", "bulk", "pack"]


def bulk(value: bytes) -> bytes:
    """One argument in RESP: ``$<length>\r\n<bytes>\r\n``."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def pack(*args: bytes) -> bytes:
    """One command in RESP: ``pack(b"GET", b"key")``."""
    return b"*%d\r\n%s" % (len(args), b"".join(bulk(a) for a in args))


class XaddPacker:
    """Packs ``XADD <key> MAXLEN ~ <n> * m <data>`` for a fixed key and cap."""

    __slots__ = ("_head",)

    def __init__(self, key: str, maxlen: int, *, nomkstream: bool = False) -> None:
        parts = [b"XADD", key.encode()]
        if nomkstream:
            parts.append(b"NOMKSTREAM")
        parts += [b"MAXLEN", b"~", str(maxlen).encode(), b"*", b"m"]
        self._head = b"*%d\r\n%s" % (len(parts) + 1, b"".join(bulk(p) for p in parts))

    def __call__(self, data: bytes) -> bytes:
        return b"%s$%d\r\n%s\r\n" % (self._head, len(data), data)
