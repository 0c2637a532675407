"""Per-engine Redis ACL users against a real redis-server: the legitimate flows work, the
rest is NOPERM."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError
from typer.testing import CliRunner

from starmesh import EngineType, MessageBusClient, Settings, create_messagebus_client
from starmesh.cli.app import app
from starmesh.core.errors import MessageBusError
from starmesh.testing import RedisServer
from tests.helpers import Collector

E = EngineType


@pytest.fixture
def as_engine(
    redis_alone: RedisServer, key_prefix: str, tmp_path: Path
) -> Callable[[EngineType], str]:
    """Installs the users with ``starmesh acl --apply``; gives each engine's URL."""
    passwords = tmp_path / "passwords.json"
    result = CliRunner().invoke(
        app,
        ["acl", "--passwords", str(passwords), "--prefix", key_prefix, "--apply",
         "--url", redis_alone.url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    secrets = json.loads(passwords.read_text())
    assert oct(passwords.stat().st_mode & 0o777) == "0o600"
    assert not any(secret in result.output for secret in secrets.values())  # hashes only
    port = redis_alone.port
    return lambda engine: f"redis://{engine.value}:{secrets[engine.value]}@127.0.0.1:{port}/0"


async def test_engines_as_their_own_users_talk_and_nothing_more(
    as_engine: Callable[[EngineType], str], key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix, failover_after_s=0.5)
    clients: list[MessageBusClient] = []

    async def start(engine: EngineType) -> MessageBusClient:
        client = create_messagebus_client(engine, url=as_engine(engine), settings=settings)
        clients.append(client)
        return client

    try:
        portfolio, strategy, risk, websocket = [
            await start(e) for e in (E.PORTFOLIO, E.STRATEGY, E.RISK, E.WEBSOCKET)
        ]
        signals, alerts, everything = Collector(), Collector(), Collector()
        await portfolio.subscribe("strategy.signals.*", signals)
        await strategy.subscribe("risk.alert.*", alerts)
        await websocket.subscribe("*.*.*", everything)  # the UI gateway follows everything
        await portfolio.serve("portfolio.rpc.positions", lambda request: {"AAPL": 100})
        for client in clients:
            await client.start()
        await strategy.publish("strategy.signals.buy", {"n": 1})
        await risk.publish("risk.alert.var", {"n": 2})
        await signals.wait_for(1)
        await alerts.wait_for(1)
        await everything.wait_for(2)
        reply = await strategy.request("portfolio.rpc.positions", timeout=5)
        assert reply.payload == {"AAPL": 100}

        with pytest.raises(MessageBusError, match="NOPERM"):  # not its route
            await websocket.publish("strategy.signals.sell", {"n": 3})
        with pytest.raises(MessageBusError, match="NOPERM"):  # only the hub writes market data
            await websocket.publish("marketdata.quote.AAPL", {"bid": 1.0})
    finally:
        for client in clients:
            await client.stop()


async def test_an_engine_cannot_read_others_inboxes_nor_run_dangerous_commands(
    as_engine: Callable[[EngineType], str], key_prefix: str, redis_alone: RedisServer
) -> None:
    websocket = aioredis.Redis.from_url(as_engine(E.WEBSOCKET))
    admin = aioredis.Redis.from_url(redis_alone.url)
    risk_inbox = f"{key_prefix}:{{risk}}:inbox:normal"
    try:
        await websocket.xrange(f"{key_prefix}:{{websocket}}:inbox:normal")  # its own: fine
        with pytest.raises(NoPermissionError):
            await websocket.xrange(risk_inbox)
        with pytest.raises(NoPermissionError):
            await websocket.xreadgroup("risk", "spy", {risk_inbox: ">"})
        with pytest.raises(NoPermissionError):
            await websocket.set(f"{key_prefix}:{{md}}:snapshot:quote:AAPL", b"forged")
        for command in (("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("KEYS", "*")):
            with pytest.raises(NoPermissionError):
                await websocket.execute_command(*command)  # type: ignore[no-untyped-call]
        for dangerous in ("FLUSHALL", "FLUSHDB", "CONFIG GET *", "KEYS *", "DEBUG SLEEP 0"):
            for engine in EngineType:  # every user, asked of the server without running it
                verdict = await admin.execute_command(  # type: ignore[no-untyped-call]
                    "ACL", "DRYRUN", engine.value, *dangerous.split()
                )
                assert b"no permissions" in verdict, (engine, dangerous)
    finally:
        await websocket.aclose()
        await admin.aclose()
