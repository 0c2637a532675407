"""The Redis Streams transport: the Engine Logic Bus and the MarketData Bus in production."""

from starmesh.bus.redis.transport import RedisTransport, redact_url

__all__ = ["RedisTransport", "redact_url"]
