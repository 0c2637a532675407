"""The MarketData Hub's lease, reached through its bus client: the hub never touches Redis.

Over Redis the lease is :class:`~starmesh.bus.redis.lease.RedisLease` (one active hub, the
others on standby, every write fenced by the active hub's token). The embedded bus has no
lease: it lives in one process, so its one hub is always the active one.
"""

from __future__ import annotations

from starmesh.bus.redis import RedisTransport
from starmesh.bus.redis.lease import HubPresence, RedisLease
from starmesh.client.messagebus import MessageBusClient

__all__ = ["HubLease", "HubPresence", "hub_lease"]

HubLease = RedisLease


def hub_lease(client: MessageBusClient, ttl_s: float) -> HubLease | None:
    """The lease of the hub whose (started) bus client is ``client``; None without Redis."""
    transport = client.marketdata_transport
    if isinstance(transport, RedisTransport):
        return RedisLease(transport, client.instance, ttl_s)
    return None
