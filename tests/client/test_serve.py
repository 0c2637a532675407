"""Answers given concurrently (``serve(concurrency>1)``) never fail silently."""

from __future__ import annotations

import logging

import msgspec
import pytest
import redis.asyncio as aioredis

from starmesh import EngineType, Message, Settings, create_messagebus_client
from starmesh.core.ids import message_id
from starmesh.testing import RedisServer
from tests.helpers import eventually


async def test_a_concurrent_answer_that_cannot_be_sent_is_logged_and_counted(
    redis_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the answering task's exception was dropped with the task."""
    settings = Settings(key_prefix=key_prefix)
    answered: list[Message] = []

    def responder(request: Message) -> dict[str, int]:
        answered.append(request)
        return {"ok": 1}

    server = create_messagebus_client(EngineType.RISK, url=redis_server.url, settings=settings)
    await server.serve("risk.rpc.check", responder, concurrency=4)
    redis = aioredis.Redis.from_url(redis_server.url)
    caplog.set_level(logging.ERROR, logger="starmesh")
    try:
        async with server:
            request = {
                "id": message_id(1_795_000_000_000_000_000), "topic": "risk.rpc.check",
                "type": "request", "source": "strategy", "instance": "go-1", "priority": 3,
                "ts_event": 1_795_000_000_000_000_000, "ts_publish": 1_795_000_000_000_000_000,
                "payload": {}, "reply_to": "no-such-engine/x",  # the reply cannot be sent
            }  # fmt: skip
            inbox = f"{key_prefix}:{{risk}}:inbox:high"
            await redis.xadd(inbox, {"m": msgspec.msgpack.encode(request)})
            await eventually(lambda: server.stats()["answer_failures"] == 1, what="counted")
            assert len(answered) == 1
            assert "failed to answer 'risk.rpc.check'" in caplog.text
    finally:
        await redis.aclose()
