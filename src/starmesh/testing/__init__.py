"""Helpers for testing and benchmarking starmesh: real servers, started and killed on demand."""

from starmesh.testing.redis_server import RedisServer, redis_binary

__all__ = ["RedisServer", "redis_binary"]
