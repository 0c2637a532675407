"""Listen to one pub/sub channel on a connection of its own, and fail when it dies.

Not redis-py's ``PubSub.listen``: in redis-py 8 its blocking read treats any
``TimeoutError`` as "no message yet", and on Python 3.11 the kernel's ``ETIMEDOUT`` (a dead
peer found by TCP keepalive or the user timeout) is one. The read then returns at once,
forever, without yielding: the event loop spins until the next health-check PING, 30 s
later, and every other task in the process waits with it. Measured across a cut network
link (tests/faults/test_network_namespaces.py): a 17 s stall after the link came back.
Here the read has no timeout of its own, so a dead connection raises and the caller
reconnects.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from starmesh.bus.redis.cluster import RedisClient
from starmesh.bus.redis.replies import as_bytes

__all__ = ["ChannelEvent", "channel_events"]


class ChannelEvent(Enum):
    SUBSCRIBED = "subscribed"
    """The subscription is in place: anything published from now on arrives."""
    MESSAGE = "message"


async def channel_events(client: RedisClient, channel: str) -> AsyncGenerator[ChannelEvent, None]:
    """SUBSCRIBED once, then MESSAGE per message published on ``channel``.

    Raises redis-py's ConnectionError or TimeoutError when the connection is lost; the
    connection is closed on the way out, however the iteration ends. On a cluster it listens
    on the node that serves the channel's slot (a PUBLISH reaches every node).
    """
    node = client.get_node_from_key(channel) if isinstance(client, RedisCluster) else None
    pool = None if isinstance(client, RedisCluster) else client.connection_pool
    if node is not None:
        connection: AbstractConnection = node.acquire_connection()
    else:
        assert pool is not None
        pooled = await pool.get_connection()  # type: ignore[no-untyped-call]
        assert isinstance(pooled, AbstractConnection)
        connection = pooled
    try:
        await connection.send_packed_command(
            connection.pack_command("SUBSCRIBE", channel), check_health=False
        )
        while True:
            # push_request: hiredis marks pub/sub replies as pushes and, without it, would
            # hand them to a handler we do not have and read on for a reply that never comes.
            reply = await connection.read_response(push_request=True)
            kind = as_bytes(reply[0]) if isinstance(reply, list | tuple) and reply else b""
            if kind == b"subscribe":
                yield ChannelEvent.SUBSCRIBED
            elif kind == b"message":
                yield ChannelEvent.MESSAGE
    finally:
        # Never handed back subscribed: a pooled connection must not carry a subscription.
        await connection.disconnect()
        if node is not None:
            node.release(connection)  # type: ignore[arg-type]
        elif pool is not None:
            await pool.release(connection)
