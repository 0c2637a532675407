"""Redis Cluster: the URL that asks for one, the client, and which node serves a key.

A bus URL asks for a cluster with its scheme, ``redis+cluster://`` (``rediss+cluster://`` with
TLS), and names one node or several to discover the cluster from:
``redis+cluster://user:password@10.0.0.5:7000,10.0.0.6:7000``. A scheme rather than a setting,
so that each bus decides for itself (the MarketData Bus may stay on one server while the
Engine Logic Bus runs on a cluster) and ``starmesh status --url`` takes the same URL.

Ordinary commands go through redis-py's :class:`~redis.asyncio.cluster.RedisCluster`, which
routes each to its slot's master and follows redirections. The hot loops (the publisher's
batches, the readers' blocking reads) keep connections of their own to each master and use
:class:`Topology` to know which one serves a slot, refreshing it on a redirection or a
failure.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from starmesh.core.errors import ConfigurationError

__all__ = [
    "CLUSTER_SCHEMES",
    "ClusterMoved",
    "RedisClient",
    "Topology",
    "cluster_client",
    "command_key",
    "is_cluster_url",
    "is_redirect",
    "parse_cluster_url",
]

logger = logging.getLogger(__name__)

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""A cluster URL's scheme -> the scheme of its nodes."""

RedisClient = aioredis.Redis | RedisCluster
"""redis-py's client of one server, or of a cluster: the same commands, routed by key."""


class ClusterMoved(RedisConnectionError):
    """A node no longer serves a slot, or the cluster is changing: try again once the slot
    map is refreshed. A connection error, so every retry loop treats it like one."""


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> tuple[str, list[tuple[str, int]]]:
    """``redis+cluster://u:p@h1:7000,h2:7001/0?x=y`` -> (``redis://u:p@h1:7000/0?x=y``, the
    other nodes ``[("h2", 7001)]``). Raises ConfigurationError for what a cluster cannot be.
    """
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigurationError(f"not a cluster URL (use redis+cluster://): {_shown(url)}")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    nodes = [_host_port(item, url) for item in hosts.split(",") if item.strip()]
    if not nodes:
        raise ConfigurationError(
            "a cluster URL names at least one node, e.g. redis+cluster://10.0.0.5:7000: "
            + _shown(url)
        )
    if parts.path not in ("", "/", "/0"):
        raise ConfigurationError(
            f"a Redis Cluster has only database 0; drop {parts.path!r} from {_shown(url)}"
        )
    host, port = nodes[0]
    first = f"{userinfo}{at}{f'[{host}]' if ':' in host else host}:{port}"
    return urlunsplit((scheme, first, "", parts.query, "")), nodes[1:]


def _host_port(item: str, url: str) -> tuple[str, int]:
    probe = urlsplit(f"//{item.strip()}")
    try:
        port = probe.port or 6379
    except ValueError:
        raise ConfigurationError(f"not a host:port in {_shown(url)}: {item!r}") from None
    if not probe.hostname:
        raise ConfigurationError(f"not a host:port in {_shown(url)}: {item!r}")
    return probe.hostname, port


def _shown(url: str) -> str:
    """``url`` without a password (the transport's redact_url, which imports this module)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if ":" in userinfo:
        userinfo = f"{userinfo.partition(':')[0]}:***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{hosts}", query=""))


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """The redis-py cluster client of a ``redis+cluster://`` URL; ``options`` go to every
    node's connections."""
    if urlsplit(url).scheme.lower() == "unix":
        raise ConfigurationError("a Redis Cluster is reached over TCP, not a Unix socket")
    node_url, others = parse_cluster_url(url)
    startup = [ClusterNode(host, port) for host, port in others]
    try:
        return RedisCluster.from_url(node_url, startup_nodes=startup or None, **options)
    except RedisClusterException as exc:
        raise ConfigurationError(f"bad cluster URL {_shown(url)}: {exc}") from None


def command_key(packed: bytes) -> bytes:
    """The key a packed command is routed by: its second argument (``XADD key ...``,
    ``XACK key ...``, ``GET key``), the first key of an ``EVAL script numkeys key ...``."""
    name, key = _arguments(packed, 2)
    if name.upper() in (b"EVAL", b"EVALSHA"):
        return _arguments(packed, 4)[3]
    return key


def _arguments(packed: bytes, count: int) -> list[bytes]:
    """The first ``count`` arguments of a packed command (``*<n>\r\n$<len>\r\n<arg>\r\n...``)."""
    position = packed.index(b"\r\n") + 2
    found = []
    for _ in range(count):
        end = packed.index(b"\r\n", position)
        length = int(packed[position + 1 : end])
        found.append(packed[end + 2 : end + 2 + length])
        position = end + 2 + length + 2
    return found


_REDIRECT_TEXTS = ("UNBLOCKED", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN")


def is_redirect(error: ResponseError) -> bool:
    """Whether ``error`` says "not here, not now" rather than "no": the command was not run
    and goes again once the slot map is refreshed (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, a read
    blocked on a master that became a replica: UNBLOCKED, a write to a replica: READONLY).
    """
    if isinstance(error, AskError | TryAgainError | ClusterDownError | ReadOnlyError):
        return True
    return str(error).startswith(_REDIRECT_TEXTS)


class Topology:
    """Which master serves a slot, from redis-py's slot map, refreshed when it is found out
    of date; and connections of one's own to those masters (outside redis-py's pools, which
    a refresh recycles)."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        self._slots: dict[bytes, int] = {}
        self.refreshes = 0

    async def ready(self) -> None:
        await self.client.initialize()

    def slot_of(self, packed: bytes) -> int:
        """The slot a packed command goes to."""
        key = command_key(packed)
        slot = self._slots.get(key)
        if slot is None:
            slot = key_slot(key)
            if len(self._slots) < 100_000:  # inbox, reply, snapshot keys: a bounded set
                self._slots[key] = slot
        return slot

    def master(self, slot: int) -> ClusterNode:
        return self.client.nodes_manager.get_node_from_slot(slot)

    def masters(self) -> list[ClusterNode]:
        return list(self.client.get_primaries())

    def node(self, host: str, port: int) -> ClusterNode | None:
        return self.client.get_node(host=host, port=port)

    async def refresh(self) -> None:
        """Read the slot map again (concurrent callers share one refresh)."""
        self.refreshes += 1
        try:
            await self.client.nodes_manager.initialize()
        except (RedisClusterException, *_NETWORK) as exc:
            # No node answered: the caller's next attempt fails too and backs off.
            logger.warning("cluster slot map refresh failed: %s", exc)

    @staticmethod
    def connect(node: ClusterNode) -> AbstractConnection:
        """A new connection to ``node`` (connected on first use), owned by the caller."""
        connection: AbstractConnection = node.connection_class(**node.connection_kwargs)
        return connection


_NETWORK = (RedisConnectionError, OSError)
