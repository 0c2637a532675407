"""Connecting to Redis: one server or a cluster, with the same socket options; TLS always
verified; passwords never shown."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

from starmesh.bus.redis.cluster import RedisClient, cluster_client, is_cluster_url
from starmesh.core.config import Settings

__all__ = ["redact_url", "redis_client"]

_KEEPALIVE: dict[int, int] = {
    getattr(socket, name): value
    for name, value in (
        ("TCP_KEEPIDLE", 5),
        ("TCP_KEEPINTVL", 2),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 11_000),
    )
    if hasattr(socket, name)
}
"""Probe an idle connection after 5 s, every 2 s, give up after 3 misses; and give up on one
whose sent bytes go unacknowledged for 11 s. Keepalive alone never fires while a blocking
read is in flight (its request is unacknowledged data), so without the user timeout a cut
link stalls a consumer for TCP's retransmission limit, about 15 minutes."""


_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "token", "secret"})


def redact_url(url: str) -> str:
    """``url`` without its password (in the authority or as a query parameter), for logs,
    errors and names."""
    parts = urlsplit(url)
    secret_query = any(
        item.partition("=")[0].lower() in _SECRET_PARAMS for item in parts.query.split("&")
    )
    if parts.password is None and not secret_query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() in _SECRET_PARAMS else f"{name}={value}" if eq else name
        for name, eq, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _tls_options(url: str, settings: Settings) -> dict[str, Any]:
    """redis-py's TLS arguments for a ``rediss://`` URL: the server is always verified."""
    if urlsplit(url).scheme not in ("rediss", "rediss+cluster"):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    for option, path in (
        ("ssl_ca_certs", settings.redis_tls_ca_file),
        ("ssl_certfile", settings.redis_tls_cert_file),
        ("ssl_keyfile", settings.redis_tls_key_file),
    ):
        if path is not None:
            options[option] = str(path)
    return options


def redis_client(url: str, settings: Settings) -> RedisClient:
    """redis-py's client for ``url``: a server's (``redis://``, ``rediss://``, ``unix://``) or a
    cluster's (``redis+cluster://``, ``rediss+cluster://``); it connects on first use."""
    # socket_timeout=None, explicitly (redis-py's default is 5 s): with a timeout, every
    # reply is read inside an asyncio.timeout and every send goes through
    # asyncio.wait_for, which costs CPU per reply and, on Python 3.11, can swallow a
    # task's cancellation. A dead peer is noticed by TCP keepalive instead (about 11 s);
    # publishes keep their own deadline. A Unix socket needs no keepalive (nor takes
    # one): the kernel closes it when the server dies.
    keepalive: dict[str, Any] = (
        {}
        if urlsplit(url).scheme == "unix"
        else {"socket_keepalive": True, "socket_keepalive_options": _KEEPALIVE}
    )
    options: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": None,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
        **keepalive,
        **_tls_options(url, settings),
    }
    if is_cluster_url(url):
        return cluster_client(url, **options)
    return aioredis.Redis.from_url(url, **options)
