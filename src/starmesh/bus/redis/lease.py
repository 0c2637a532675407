"""The MarketData Hub's lease: one hub writes market data, the others wait on standby.

The lease is a key, ``<p>:{md}:lease``, holding ``<token> <instance>`` with a TTL that the
active hub keeps renewing. A hub takes it when it is free, and with it a new **fencing
token**: the fencing counter ``<p>:{md}:fence`` is raised to the server's time in UNIX ns if
it is behind, then incremented, so a token is larger than every token before it (and than
the start time a hub without a lease uses as its epoch): the hub's ``epoch``.

Every write of the active hub (a snapshot key with its broadcast entry; the pairs it
streams) runs in a script that first checks that the lease still holds its token: a hub
that paused past its TTL, and was replaced, has its writes refused with ``FENCED`` and never
overwrites its successor's. All these keys share the hash tag ``{md}``, so on a cluster each
script runs on one master.

Hubs also announce themselves in ``<p>:{md}:hubs`` (instance -> msgpack ``[last_seen_ms,
state, http_url]``) so ``starmesh status`` shows the standby too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from redis.exceptions import RedisClusterException, ResponseError

from starmesh.bus.redis.cluster import RedisClient
from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.publisher import NETWORK_ERRORS
from starmesh.bus.redis.replies import as_bytes
from starmesh.bus.redis.transport import RedisTransport
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    BusUnavailableError,
    FencedError,
    MessageBusError,
    MessageDecodeError,
)
from starmesh.core.payloads import Snapshot

__all__ = [
    "ACQUIRE_SCRIPT",
    "HubPresence",
    "RedisLease",
    "read_hubs",
]

logger = logging.getLogger(__name__)

ACQUIRE_SCRIPT = """
local lease, fence, holder, ttl = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', lease) == 1 then return false end
local now = redis.call('TIME')
local stamp = now[1] .. string.format('%06d', tonumber(now[2])) .. '000'
local last = redis.call('GET', fence)
if not last or #last < #stamp or (#last == #stamp and last < stamp) then
  redis.call('SET', fence, stamp)
end
redis.call('INCR', fence)
local token = redis.call('GET', fence)
redis.call('SET', lease, token .. ' ' .. holder, 'PX', ttl)
return token
"""
"""Take the free lease with a new token (compared and incremented as decimal strings and by
INCR: Lua's numbers are doubles, exact only to 2^53)."""

_RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

_FENCED_ADD_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this hub no longer holds the lease')
end
return redis.call('SADD', KEYS[2], unpack(ARGV, 2))
"""

_T = TypeVar("_T")


async def _redis(what: str, call: Callable[[], Awaitable[_T]]) -> _T:
    """``call()``, its Redis failures told as starmesh errors (the hub never sees Redis's)."""
    try:
        return await call()
    except (*NETWORK_ERRORS, RedisClusterException) as exc:
        raise BusUnavailableError(f"hub lease: {what}: {exc}") from exc
    except ResponseError as exc:
        if str(exc).startswith("FENCED"):
            raise FencedError(f"hub lease: {what}: {exc}") from None
        raise MessageBusError(f"hub lease: {what}: {exc}") from exc


_stream_entry = msgspec.msgpack.Encoder()
_stream_entries = msgspec.msgpack.Decoder(tuple[str, str, DataType])
_presence = msgspec.msgpack.Decoder(list[Any])


class HubPresence(msgspec.Struct, frozen=True):
    instance: str
    last_seen_ms: int
    state: str
    """``active`` or ``standby``."""
    http_url: str | None = None


class RedisLease:
    """The lease of ``holder`` (a hub instance) on the MarketData Bus ``transport``."""

    def __init__(self, transport: RedisTransport, holder: str, ttl_s: float) -> None:
        self._transport = transport
        self.holder = holder
        self.ttl_ms = max(1, round(ttl_s * 1000))
        keys = transport.keys
        self._keys = keys
        client = transport.client
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._renew = client.register_script(_RENEW_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)
        self._add = client.register_script(_FENCED_ADD_SCRIPT)
        self.token: int | None = None
        """The fencing token while this holder has the lease (the hub's epoch)."""
        self._value = b""

    async def acquire(self) -> int | None:
        """Take the lease if it is free: the new token, else None."""
        keys = [self._keys.hub_lease, self._keys.hub_fence]
        token = await _redis(
            "acquire", lambda: self._acquire(keys=keys, args=[self.holder, self.ttl_ms])
        )
        if token is None:
            return None
        self.token = int(token)
        self._value = b"%d %s" % (self.token, self.holder.encode())
        self._transport.fence(self._value)
        return self.token

    async def renew(self) -> bool:
        """Extend the lease by its TTL; False once it is lost (expired, or taken by another)."""
        if self.token is None:
            return False
        args: list[bytes | int] = [self._value, self.ttl_ms]
        if await _redis("renew", lambda: self._renew(keys=[self._keys.hub_lease], args=args)):
            return True
        self.token = None  # the transport keeps the old value: Redis refuses its writes
        return False

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so a standby need not wait for the TTL."""
        if self.token is not None:
            self.token = None
            keys, args = [self._keys.hub_lease], [self._value]
            await _redis("release", lambda: self._release(keys=keys, args=args))

    async def holder_now(self) -> str | None:
        """``<token> <instance>`` of whoever holds the lease, if anyone."""
        value = await _redis("read", lambda: self._transport.client.get(self._keys.hub_lease))
        return None if value is None else as_bytes(value).decode(errors="replace")

    # --- what a successor needs ------------------------------------------------------------

    async def last_sequences(self) -> dict[tuple[str, DataType], int]:
        """The ``seq`` of every snapshot key: where the numbering of each pair goes on."""
        return await _redis("read the snapshots", self._last_sequences)

    async def _last_sequences(self) -> dict[tuple[str, DataType], int]:
        client = self._transport.client
        codec = self._transport.codec
        found: dict[tuple[str, DataType], int] = {}
        keys = [k async for k in client.scan_iter(match=self._keys.snapshot_pattern, count=1000)]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            async with client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.get(key)
                values = await pipe.execute()
            for key, value in zip(chunk, values, strict=True):
                if value is None:
                    continue
                try:
                    snapshot = codec.decode(as_bytes(value)).payload
                except MessageDecodeError as exc:
                    logger.warning("snapshot key %r does not decode: %s", key, exc)
                    continue
                if isinstance(snapshot, Snapshot):
                    pair = (snapshot.symbol, snapshot.data_type)
                    found[pair] = max(found.get(pair, 0), snapshot.seq)
        return found

    async def add_streams(self, pairs: Sequence[tuple[str, str, DataType]]) -> None:
        """Record (source, symbol, data type) pairs as streamed, under the lease."""
        if pairs:
            keys = [self._keys.hub_lease, self._keys.hub_streams]
            args = [self._value, *(_stream_entry.encode(list(pair)) for pair in pairs)]
            await _redis("record streams", lambda: self._add(keys=keys, args=args))

    async def streams(self) -> list[tuple[str, str, DataType]]:
        """The pairs the hubs were asked to stream, in a stable order."""
        client = self._transport.client
        raw = await _redis("read streams", lambda: client.smembers(self._keys.hub_streams))
        pairs = []
        for member in raw:
            try:
                pairs.append(_stream_entries.decode(as_bytes(member)))
            except (msgspec.DecodeError, msgspec.ValidationError):
                logger.warning("ignoring a streamed pair that does not decode: %r", member)
        return sorted(pairs)

    async def announce(self, state: str, http_url: str | None) -> None:
        """Say this hub is alive, and whether it is active or on standby."""
        value = msgspec.msgpack.encode([int(time.time() * 1000), state, http_url])
        client = self._transport.client
        await _redis("announce", lambda: client.hset(self._keys.hubs, self.holder, value))

    async def retire(self) -> None:
        """Take this hub's announcement down (a clean stop)."""
        client = self._transport.client
        await _redis("retire", lambda: client.hdel(self._keys.hubs, self.holder))


async def read_hubs(client: RedisClient, prefix: str) -> list[HubPresence]:
    """Every hub that announced itself on the MarketData Bus of ``client``, by instance."""
    raw = await client.hgetall(Keys(prefix).hubs)
    hubs = []
    for name, value in raw.items():
        try:
            seen, state, url = _presence.decode(as_bytes(value))[:3]
        except (msgspec.DecodeError, ValueError):
            continue
        if isinstance(seen, int) and isinstance(state, str):
            url = url if isinstance(url, str) else None
            hubs.append(HubPresence(as_bytes(name).decode(errors="replace"), seen, state, url))
    return sorted(hubs, key=lambda hub: hub.instance)
