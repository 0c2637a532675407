"""Message ids: unique across processes and hosts, and sortable by creation time.

An id is 32 lower-case hex digits: 16 of the UNIX-nanosecond timestamp, 8 of a random node
id drawn per process (again after ``fork``), 8 of a per-process counter. Fixed width makes
lexicographic order equal to time order; node and counter make ids unique even when two
processes stamp the same nanosecond.
"""

from __future__ import annotations

import itertools
import os
import secrets

__all__ = ["message_id", "node_id"]

_node = secrets.token_hex(4)
_node_bits = int(_node, 16) << 32
_counter = itertools.count()


def _reseed() -> None:
    global _node, _node_bits, _counter
    _node = secrets.token_hex(4)
    _node_bits = int(_node, 16) << 32
    _counter = itertools.count()


os.register_at_fork(after_in_child=_reseed)


def message_id(ts_ns: int) -> str:
    """A new id stamped with ``ts_ns`` (the message's publish time)."""
    # One 128-bit integer rendered once: about 3x cheaper than formatting three fields.
    return ((ts_ns << 64) | _node_bits | (next(_counter) & 0xFFFFFFFF)).to_bytes(16).hex()


def node_id() -> str:
    """This process's random node id (8 hex digits)."""
    return _node
