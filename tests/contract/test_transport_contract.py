"""What every transport guarantees, observed through the client an engine uses."""

from __future__ import annotations

import asyncio

import pytest

from starmesh import (
    EngineType,
    Message,
    MessageBusError,
    MessagePriority,
    MessageType,
    NoResponderError,
    RemoteError,
    RequestTimeout,
)
from starmesh.core.payloads import Prediction, Quote, RiskAlert
from tests.contract.conftest import Mesh
from tests.helpers import Collector, eventually
from tests.samples import sample_payloads

E = EngineType
P = MessagePriority


async def test_one_publisher_one_priority_arrives_in_order(mesh: Mesh) -> None:
    risk = await mesh.client(E.RISK)
    strategy = await mesh.client(E.STRATEGY)
    got = Collector()
    await strategy.subscribe("risk.alert.var", got)
    ids = [await risk.publish("risk.alert.var", {"n": n}) for n in range(500)]
    await got.wait_for(500)
    assert [m.payload["n"] for m in got.messages] == list(range(500))
    assert [m.id for m in got.messages] == ids
    first = got.messages[0]
    assert (first.source, first.instance, first.type) == (
        E.RISK,
        risk.instance,
        MessageType.RISK_ALERT,
    )
    assert first.ts_publish >= first.ts_event > 0


async def test_a_more_urgent_message_overtakes_queued_ones(mesh: Mesh) -> None:
    risk = await mesh.client(E.RISK)
    strategy = await mesh.client(E.STRATEGY)
    handling = asyncio.Event()
    release = asyncio.Event()
    order: list[str] = []

    async def handler(message: Message) -> None:
        order.append(message.payload["name"])
        if message.payload["name"] == "first":
            handling.set()
            await release.wait()

    await strategy.subscribe("risk.*", handler)
    await risk.publish("risk.alert.var", {"name": "first"})
    await handling.wait()  # the subscriber is now busy: everything below queues
    for n in range(50):
        await risk.publish("risk.alert.var", {"name": f"normal-{n}"})
    await risk.publish("risk.alert.var", {"name": "low"}, priority=P.LOW)
    await risk.publish("risk.alert.crash", {"name": "flash"}, priority=P.FLASH_CRASH)
    await risk.publish("risk.alert.var", {"name": "urgent"}, priority=P.URGENT)
    release.set()
    await eventually(lambda: len(order) == 54, what="all 54 handled")
    assert order[:3] == ["first", "flash", "urgent"]
    assert order[3:53] == [f"normal-{n}" for n in range(50)]
    assert order[53] == "low"


async def test_wildcard_patterns(mesh: Mesh) -> None:
    risk = await mesh.client(E.RISK)
    strategy = await mesh.client(E.STRATEGY)
    star, single, everything = Collector(), Collector(), Collector()
    await strategy.subscribe("risk.alert.*", star)
    await strategy.subscribe("risk.?ar", single)
    await strategy.subscribe("*", everything)
    for topic in [
        "risk.alert.var",
        "risk.alert.gross.usd",
        "risk.var",
        "risk.bar",
        "risk.alerts",
        "riskalert.x",
        "risk.vars",
    ]:
        await risk.publish(topic, {"topic": topic})
    await everything.wait_for(7)
    assert [m.topic for m in star.messages] == ["risk.alert.var", "risk.alert.gross.usd"]
    assert [m.topic for m in single.messages] == ["risk.var", "risk.bar"]


async def test_fan_out_reaches_every_subscribing_engine_type_once(mesh: Mesh) -> None:
    strategy = await mesh.client(E.STRATEGY)
    collectors = {}
    for engine in (E.PORTFOLIO, E.RISK, E.ANALYTICS):
        collectors[engine] = Collector()
        client = await mesh.client(engine)
        await client.subscribe("strategy.signals.*", collectors[engine])
    for n in range(100):
        await strategy.publish("strategy.signals.buy", {"n": n})
    for collector in collectors.values():
        await collector.wait_for(100)
        assert [m.payload["n"] for m in collector.messages] == list(range(100))


async def test_instances_of_one_engine_type_share_the_load(mesh: Mesh) -> None:
    strategy = await mesh.client(E.STRATEGY)
    handled: dict[str, list[int]] = {"p1": [], "p2": []}
    for name in handled:
        client = await mesh.client(E.PORTFOLIO, instance=name)

        def record(message: Message, into: list[int] = handled[name]) -> None:
            into.append(message.payload["n"])

        await client.subscribe("strategy.signals.*", record)
    for n in range(1_000):
        await strategy.publish("strategy.signals.buy", {"n": n})
    await eventually(lambda: len(handled["p1"]) + len(handled["p2"]) >= 1_000, what="1,000 handled")
    everything = handled["p1"] + handled["p2"]
    assert sorted(everything) == list(range(1_000))  # each exactly once


async def test_marketdata_and_logic_topics_both_arrive(mesh: Mesh) -> None:
    hub = await mesh.client(E.MARKETDATA)
    strategy = await mesh.client(E.STRATEGY)
    quotes, requests, everything = Collector(), Collector(), Collector()
    await strategy.subscribe("marketdata.quote.*", quotes)
    await strategy.subscribe("marketdata.request.*", requests)
    await strategy.subscribe("*", everything)
    quote = Quote(symbol="AAPL", bid=1.0, ask=1.1, bid_size=1, ask_size=1)
    await hub.publish("marketdata.quote.AAPL", quote)
    await hub.publish("marketdata.request.snapshot", {"symbols": ["AAPL"]})
    await hub.publish("risk.alert.var", {})
    await everything.wait_for(3)
    await quotes.wait_for(1)
    await requests.wait_for(1)
    assert quotes.payloads == [quote]
    assert sorted(m.topic for m in everything.messages) == [
        "marketdata.quote.AAPL", "marketdata.request.snapshot", "risk.alert.var",
    ]  # fmt: skip


async def test_typed_payloads_arrive_as_their_class(mesh: Mesh) -> None:
    ml = await mesh.client(E.ML)
    strategy = await mesh.client(E.STRATEGY)
    got = Collector()
    await strategy.subscribe("ml.typed.*", got)
    samples = sample_payloads()
    for payload in samples:
        await ml.publish("ml.typed.sample", payload)
    await got.wait_for(len(samples))
    assert got.payloads == samples
    assert [type(p) for p in got.payloads] == [type(p) for p in samples]
    await ml.publish(
        "ml.prediction.AAPL",
        Prediction(model="m", symbol="AAPL", horizon="1d", value=0.1, confidence=0.5),
    )
    await strategy.subscribe("ml.prediction.*", predictions := Collector())
    await ml.publish(
        "ml.prediction.AAPL",
        Prediction(model="m", symbol="AAPL", horizon="1d", value=0.2, confidence=0.5),
    )
    (prediction,) = await predictions.wait_for(1)
    assert prediction.type is MessageType.ML_PREDICTION
    assert prediction.payload.value == 0.2


async def test_request_reply(mesh: Mesh) -> None:
    portfolio = await mesh.client(E.PORTFOLIO)
    strategy = await mesh.client(E.STRATEGY)

    async def positions(request: Message) -> dict[str, object]:
        return {"AAPL": 100, "asked_by": request.source.value, "args": request.payload}

    await portfolio.serve("portfolio.rpc.positions", positions)
    reply = await strategy.request("portfolio.rpc.positions", {"account": "A1"}, timeout=5)
    assert reply.payload == {"AAPL": 100, "asked_by": "strategy", "args": {"account": "A1"}}
    assert reply.type is MessageType.REPLY
    assert reply.source is E.PORTFOLIO
    assert reply.correlation_id is not None
    replies = await asyncio.gather(
        *(strategy.request("portfolio.rpc.positions", {"n": n}) for n in range(50))
    )
    assert [r.payload["args"] for r in replies] == [{"n": n} for n in range(50)]
    assert len({r.correlation_id for r in replies}) == 50


async def test_a_handler_may_wait_for_a_reply(mesh: Mesh) -> None:
    """A request made inside a handler gets its reply though the handler holds its turn."""
    strategy = await mesh.client(E.STRATEGY)
    portfolio = await mesh.client(E.PORTFOLIO)
    risk = await mesh.client(E.RISK)
    await risk.serve("risk.rpc.check", lambda request: {"approved": request.payload["n"] % 2 == 0})
    verdicts = Collector()

    async def on_signal(message: Message) -> None:
        reply = await portfolio.request("risk.rpc.check", message.payload, timeout=5)
        verdicts(reply)

    await portfolio.subscribe("strategy.signals.*", on_signal)
    for n in range(3):
        await strategy.publish("strategy.signals.buy", {"n": n})
    await verdicts.wait_for(3)
    assert [m.payload["approved"] for m in verdicts.messages] == [True, False, True]


async def test_reply_correlation_id_is_the_request_id(mesh: Mesh) -> None:
    portfolio = await mesh.client(E.PORTFOLIO)
    strategy = await mesh.client(E.STRATEGY)
    seen: list[str] = []

    def responder(request: Message) -> RiskAlert:
        seen.append(request.id)
        return RiskAlert(rule="r", severity="info", message="ok")

    await portfolio.serve("portfolio.rpc.check", responder)
    reply = await strategy.request("portfolio.rpc.check")
    assert reply.correlation_id == seen[0]
    assert isinstance(reply.payload, RiskAlert)


async def test_a_failing_responder_raises_remote_error_at_the_requester(mesh: Mesh) -> None:
    portfolio = await mesh.client(E.PORTFOLIO)
    strategy = await mesh.client(E.STRATEGY)

    def broken(request: Message) -> dict[str, object]:
        raise ValueError(f"no account {request.payload['account']}")

    await portfolio.serve("portfolio.rpc.positions", broken)
    with pytest.raises(RemoteError, match="ValueError: the responder failed") as caught:
        await strategy.request("portfolio.rpc.positions", {"account": "Z9"})
    assert caught.value.code == "ValueError"
    assert "Z9" not in str(caught.value)  # its text stays with the responder's log


async def test_request_to_a_topic_nobody_serves_fails_at_once(mesh: Mesh) -> None:
    strategy = await mesh.client(E.STRATEGY)
    with pytest.raises(NoResponderError, match=r"no engine serves 'portfolio\.rpc\.nothing'"):
        await strategy.request("portfolio.rpc.nothing", timeout=30)


async def test_request_times_out_and_a_late_reply_is_dropped(mesh: Mesh) -> None:
    portfolio = await mesh.client(E.PORTFOLIO)
    strategy = await mesh.client(E.STRATEGY)
    release = asyncio.Event()
    answered = asyncio.Event()

    async def slow(request: Message) -> dict[str, object]:
        await release.wait()
        answered.set()
        return {"late": True}

    await portfolio.serve("portfolio.rpc.slow", slow)
    with pytest.raises(
        RequestTimeout, match=r"no reply to 'portfolio\.rpc\.slow' within 0\.2 s"
    ) as caught:
        await strategy.request("portfolio.rpc.slow", timeout=0.2)
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, MessageBusError)
    release.set()
    await answered.wait()
    await eventually(
        lambda: strategy.stats()["late_replies"] + portfolio.stats()["expired_requests"] >= 1,
        what="late reply counted",
    )
    assert strategy.stats()["pending_requests"] == 0


async def test_handler_errors_are_contained_retried_then_dead_lettered(mesh: Mesh) -> None:
    risk = await mesh.client(E.RISK)
    strategy = await mesh.client(E.STRATEGY)
    attempts: dict[int, int] = {}
    ok = Collector()

    def handler(message: Message) -> None:
        n = message.payload["n"]
        attempts[n] = attempts.get(n, 0) + 1
        if n == 3:
            raise RuntimeError("cannot handle n=3")
        if n == 5 and attempts[n] == 1:
            raise ConnectionError("transient")
        ok(message)

    await strategy.subscribe("risk.alert.*", handler)
    for n in range(10):
        await risk.publish("risk.alert.var", {"n": n})
    await ok.wait_for(9)
    assert sorted(m.payload["n"] for m in ok.messages) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert attempts[5] == 2  # retried once, then handled
    await eventually(lambda: attempts[3] == mesh.settings.max_deliveries, what="3 attempts")

    async def dead_lettered() -> bool:
        return len(await strategy.dead_letters()) == 1

    await eventually(dead_lettered, what="a dead letter")
    (letter,) = await strategy.dead_letters()
    assert letter.message is not None
    assert letter.message.payload == {"n": 3}
    assert "cannot handle n=3" in letter.reason
    assert strategy.stats()["handler_failures"] == mesh.settings.max_deliveries + 1
    # The subscriber still works.
    await risk.publish("risk.alert.var", {"n": 10})
    await ok.wait_for(10)


async def test_unsubscribe_stops_delivery(mesh: Mesh) -> None:
    risk = await mesh.client(E.RISK)
    strategy = await mesh.client(E.STRATEGY)
    alerts, sentinel = Collector(), Collector()
    subscription = await strategy.subscribe("risk.alert.*", alerts)
    await strategy.subscribe("risk.done", sentinel)
    await risk.publish("risk.alert.var", {"n": 1})
    await alerts.wait_for(1)
    await strategy.unsubscribe(subscription)
    await risk.publish("risk.alert.var", {"n": 2})
    await risk.publish("risk.done", {})
    await sentinel.wait_for(1)
    assert [m.payload for m in alerts.messages] == [{"n": 1}]
    assert [s.pattern for s in strategy.subscriptions()] == ["risk.done"]


async def test_two_subscriptions_on_one_pattern_unsubscribe_independently(mesh: Mesh) -> None:
    risk = await mesh.client(E.RISK)
    strategy = await mesh.client(E.STRATEGY)
    first, second = Collector(), Collector()
    sub_first = await strategy.subscribe("risk.alert.*", first)
    await strategy.subscribe("risk.alert.*", second)
    await strategy.unsubscribe(sub_first)
    await risk.publish("risk.alert.var", {"n": 1})
    await second.wait_for(1)
    assert first.messages == []


async def test_clean_shutdown_handles_everything_queued(mesh: Mesh) -> None:
    risk = await mesh.client(E.RISK)
    strategy = await mesh.client(E.STRATEGY)
    handled: list[int] = []

    async def slow(message: Message) -> None:
        await asyncio.sleep(0)
        handled.append(message.payload["n"])

    await strategy.subscribe("risk.alert.*", slow)
    for n in range(300):
        await risk.publish("risk.alert.var", {"n": n})
    await strategy.stop()
    assert handled == list(range(300))
    with pytest.raises(MessageBusError, match="not started"):
        await strategy.publish("risk.alert.var", {})
