"""A market-data update written under the MarketData Hub's lease (see ``lease.py``).

Without a lease the transport sends ``XADD <p>:{md}:updates`` and ``SET <p>:{md}:snapshot:...``;
under one, a single ``EVAL`` that checks the lease's value first and writes both, or
neither with the error ``FENCED``. Packed by hand like the publisher's other hot commands.
"""

from __future__ import annotations

from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.resp import bulk

__all__ = ["FENCED_PUBLISH_SCRIPT", "FencedPublish"]

FENCED_PUBLISH_SCRIPT = b"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this hub no longer holds the lease')
end
redis.call('SET', KEYS[3], ARGV[3])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[3])
"""
"""KEYS: the lease, the broadcast stream, the snapshot key; ARGV: the lease value this hub
holds, the stream's cap, the message."""


class FencedPublish:
    """Packs the fenced write of one update: ``EVAL <script> 3 <lease> <updates> <snapshot>
    <value> <maxlen> <message>``."""

    __slots__ = ("_head", "_middle")

    def __init__(self, keys: Keys, value: bytes, maxlen: int) -> None:
        head = [
            b"EVAL",
            FENCED_PUBLISH_SCRIPT,
            b"3",
            keys.hub_lease.encode(),
            keys.broadcast.encode(),
        ]
        self._head = b"*9\r\n" + b"".join(bulk(part) for part in head)
        self._middle = bulk(value) + bulk(str(maxlen).encode())

    def __call__(self, snapshot_key: bytes, data: bytes) -> bytes:
        return b"%s%s%s%s" % (self._head, bulk(snapshot_key), self._middle, bulk(data))
