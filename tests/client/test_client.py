"""The client's own behaviour: argument checking, routing between buses, handler kinds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from starmesh import (
    EngineType,
    Message,
    MessageBusClient,
    MessageBusError,
    MessagePriority,
    MessageType,
    RemoteError,
    create_messagebus_client,
)
from starmesh.core.errors import ConfigurationError, InvalidTopicError, MessageEncodeError
from starmesh.core.payloads import RiskAlert
from tests.helpers import Collector


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MessageBusClient, MessageBusClient]]:
    risk = create_messagebus_client(EngineType.RISK, 8200)
    strategy = create_messagebus_client(EngineType.STRATEGY, 8700)
    async with risk, strategy:
        yield risk, strategy


async def test_clients_in_one_program_share_the_embedded_bus_with_no_setup(
    pair: tuple[MessageBusClient, MessageBusClient],
) -> None:
    risk, strategy = pair
    got = Collector()
    await strategy.subscribe("risk.alert.*", got)
    await risk.publish("risk.alert.var", {"var": 1.2e6}, priority=MessagePriority.URGENT)
    (message,) = await got.wait_for(1)
    assert message.priority is MessagePriority.URGENT
    assert message.source is EngineType.RISK
    assert (risk.port, strategy.port) == (8200, 8700)


async def test_publish_before_start_says_what_to_do() -> None:
    client = create_messagebus_client(EngineType.RISK)
    with pytest.raises(MessageBusError, match="not started; use 'async with client:'"):
        await client.publish("risk.alert.var", {})
    with pytest.raises(MessageBusError, match="not started"):
        await client.request("risk.rpc.x", {})


async def test_subscriptions_made_before_start_take_effect_at_start() -> None:
    risk = create_messagebus_client(EngineType.RISK)
    strategy = create_messagebus_client(EngineType.STRATEGY)
    got = Collector()
    await strategy.subscribe("risk.alert.*", got)
    await strategy.serve("strategy.rpc.ping", lambda request: {"pong": True})
    async with risk, strategy:
        await risk.publish("risk.alert.var", {"n": 1})
        reply = await risk.request("strategy.rpc.ping")
        await got.wait_for(1)
    assert reply.payload == {"pong": True}


@pytest.mark.parametrize(
    ("topic", "payload", "error", "match"),
    [
        ("", {}, InvalidTopicError, "topic is empty"),
        ("risk.*", {}, InvalidTopicError, "wildcards belong in subscription patterns"),
        ("risk.alert", {"t": object()}, MessageEncodeError, "cannot be serialised"),
        ("risk.alert", [1, 2], MessageEncodeError, "send a dict or a starmesh Payload"),
        (
            "risk.alert",
            {"blob": "x" * (1024 * 1024)},
            MessageEncodeError,
            "over the 1,048,576-byte",
        ),
    ],
)
async def test_bad_publishes_raise_message_bus_errors(
    pair: tuple[MessageBusClient, MessageBusClient],
    topic: str,
    payload: Any,
    error: type[Exception],
    match: str,
) -> None:
    risk, _ = pair
    with pytest.raises(error, match=match) as caught:
        await risk.publish(topic, payload)
    assert isinstance(caught.value, MessageBusError)


async def test_priority_accepts_enum_int_and_name_and_rejects_others(
    pair: tuple[MessageBusClient, MessageBusClient],
) -> None:
    risk, strategy = pair
    got = Collector()
    await strategy.subscribe("risk.p", got)
    for priority in (MessagePriority.HIGH, 3, "high"):
        await risk.publish("risk.p", {}, priority=priority)
    await got.wait_for(3)
    assert {m.priority for m in got.messages} == {MessagePriority.HIGH}
    with pytest.raises(MessageBusError, match="unknown priority 9; use one of LOW, NORMAL"):
        await risk.publish("risk.p", {}, priority=9)


async def test_message_type_explicit_then_payload_then_topic(
    pair: tuple[MessageBusClient, MessageBusClient],
) -> None:
    risk, strategy = pair
    got = Collector()
    await strategy.subscribe("*", got)
    alert = RiskAlert(rule="r", severity="info", message="m")
    await risk.publish("risk.alert.var", {}, message_type=MessageType.MARGIN_CALL)
    await risk.publish("risk.custom", alert)
    await risk.publish("risk.alert.var", {})
    await risk.publish("risk.custom", {})
    await got.wait_for(4)
    assert [m.type for m in got.messages] == [
        MessageType.MARGIN_CALL,
        MessageType.RISK_ALERT,
        MessageType.RISK_ALERT,
        MessageType.EVENT,
    ]
    with pytest.raises(MessageBusError, match="unknown message type 'nope'"):
        await risk.publish("risk.alert.var", {}, message_type="nope")


async def test_every_kind_of_handler_is_called(
    pair: tuple[MessageBusClient, MessageBusClient],
) -> None:
    risk, strategy = pair
    calls: list[str] = []

    def plain(message: Message) -> None:
        calls.append("plain")

    async def coroutine(message: Message) -> None:
        calls.append("coroutine")

    class AsyncCallable:
        async def __call__(self, message: Message) -> None:
            calls.append("async-callable")

    def returns_awaitable(message: Message) -> Any:
        return coroutine(message)

    for handler in (plain, coroutine, AsyncCallable(), returns_awaitable):
        await strategy.subscribe("risk.h", handler)
    done = Collector()
    await strategy.subscribe("risk.h", done)
    await risk.publish("risk.h", {})
    await done.wait_for(1)
    assert calls == ["plain", "coroutine", "async-callable", "coroutine"]
    with pytest.raises(TypeError, match="must be callable"):
        await strategy.subscribe("risk.h", "not a function")  # type: ignore[arg-type]


async def test_a_responder_returning_garbage_is_a_remote_error(
    pair: tuple[MessageBusClient, MessageBusClient],
) -> None:
    risk, strategy = pair
    await strategy.serve("strategy.rpc.bad", lambda request: {"when": object()})
    with pytest.raises(RemoteError, match="MessageEncodeError"):
        await risk.request("strategy.rpc.bad")
    with pytest.raises(MessageBusError, match="timeout must be positive"):
        await risk.request("strategy.rpc.bad", timeout=0)


async def test_stopping_fails_pending_requests_and_is_idempotent() -> None:
    portfolio = create_messagebus_client(EngineType.PORTFOLIO)
    strategy = create_messagebus_client(EngineType.STRATEGY)
    await portfolio.start()
    await strategy.start()
    never = asyncio.Event()

    async def hang(request: Message) -> dict[str, Any]:
        await never.wait()
        return {}

    await portfolio.serve("portfolio.rpc.hang", hang)
    pending = asyncio.create_task(strategy.request("portfolio.rpc.hang", timeout=30))
    await asyncio.sleep(0)
    await strategy.stop()
    with pytest.raises(MessageBusError, match="stopped"):
        await pending
    await strategy.stop()
    never.set()
    await portfolio.stop()
    assert not strategy.running


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"engine": "trader"}, "unknown engine 'trader'; use one of analytics"),
        ({"engine": "risk", "port": 70000}, "not a TCP port"),
        ({"engine": "risk", "instance": "a b"}, "instance name 'a b' must be"),
        (
            {"engine": "risk", "url": "redis://x:1", "marketdata_url": "memory://"},
            "one bus is embedded",
        ),
    ],
)
def test_factory_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        create_messagebus_client(**kwargs)


def test_engine_may_be_given_by_name() -> None:
    client = create_messagebus_client("vpin")
    assert client.engine is EngineType.VPIN
    assert client.port == 10000
    assert client.address == f"vpin/{client.instance}"
