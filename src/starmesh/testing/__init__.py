"""Helpers for testing and benchmarking starmesh: real servers, started and killed on demand."""

from starmesh.testing.redis_cluster import LocalRedisCluster
from starmesh.testing.redis_server import RedisServer, TlsFiles, redis_binary

__all__ = ["LocalRedisCluster", "RedisServer", "TlsFiles", "redis_binary"]
