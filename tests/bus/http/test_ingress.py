"""POST /v1/messages: who may post, what it accepts, and how it refuses the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from starmesh import EngineType, Message
from starmesh.bus.http import HttpAuth, MessagesEndpoint, Receipt, token_digest
from starmesh.bus.http.wire import encode_body
from starmesh.core.codec import MessageCodec
from tests.core.test_codec import envelope

codec = MessageCodec()
MSGPACK = {"Content-Type": "application/msgpack"}


class Recorder:
    """A receiver that records what reaches it; topics under ``nobody.`` are not handled."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def receive(self, messages: list[Message]) -> Receipt:
        for accepted, message in enumerate(messages):
            if message.topic.startswith("nobody."):
                return Receipt(accepted=accepted, error=f"no handler for {message.topic!r}")
            self.received.append(message)
        return Receipt(accepted=len(messages))


def client_for(endpoint: MessagesEndpoint) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(endpoint.router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engine")


def endpoint(
    auth: HttpAuth | None = None, max_body: int = 1 << 20
) -> tuple[MessagesEndpoint, Recorder]:
    recorder = Recorder()
    return MessagesEndpoint(
        recorder, auth=auth or HttpAuth(), codec=codec, max_body=max_body
    ), recorder


def risk_message(payload: Any = None, **overrides: Any) -> Message:
    return envelope({"n": 1} if payload is None else payload, **overrides)  # source: risk


TOKENS = {"risk": "risk-secret", "strategy": "strategy-secret", "operator": "ops-secret"}
DIGESTS = {name: token_digest(token) for name, token in TOKENS.items()}


async def test_one_message_or_an_ordered_batch_in_msgpack_or_json() -> None:
    ingress, recorder = endpoint()
    async with client_for(ingress) as http:
        single = await http.post(
            "/v1/messages", content=codec.encode(risk_message()), headers=MSGPACK
        )
        assert (single.status_code, single.json()["accepted"]) == (200, 1)
        batch = [codec.encode(risk_message(id=f"id{n}", payload={"n": n})) for n in range(20)]
        many = await http.post("/v1/messages", content=encode_body(batch), headers=MSGPACK)
        assert many.json()["accepted"] == 20
        as_json = msgspec.to_builtins(risk_message(id="json-1"))
        json_answer = await http.post("/v1/messages", json=as_json)
        assert json_answer.status_code == 200
    assert [m.payload["n"] for m in recorder.received[1:21]] == list(range(20))
    assert recorder.received[-1].id == "json-1"


async def test_a_message_no_handler_takes_is_409_with_how_many_were_taken() -> None:
    ingress, _ = endpoint()
    batch = [
        codec.encode(risk_message(id="a")),
        codec.encode(risk_message(id="b", topic="nobody.x")),
    ]
    async with client_for(ingress) as http:
        answer = await http.post("/v1/messages", content=encode_body(batch), headers=MSGPACK)
    assert answer.status_code == 409
    assert answer.json()["accepted"] == 1
    assert "no handler" in answer.json()["error"]
    assert ingress.counts["refused"] == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic cmlzaw=="}, 401),
        ({"Authorization": f"Bearer {TOKENS['strategy']}"}, 403),  # claims to be risk
        ({"Authorization": f"Bearer {TOKENS['operator']}"}, 403),  # reads, never posts
        ({"Authorization": f"Bearer {TOKENS['risk']}"}, 200),
    ],
)
async def test_per_engine_tokens_and_the_source_claim(headers: dict[str, str], status: int) -> None:
    ingress, recorder = endpoint(HttpAuth("risk-secret", DIGESTS))
    async with client_for(ingress) as http:
        answer = await http.post(
            "/v1/messages", content=codec.encode(risk_message()), headers={**MSGPACK, **headers}
        )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] or status == 200
    assert len(recorder.received) == (1 if status == 200 else 0)  # nothing processed otherwise
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_a_shared_token_lets_its_holders_in_and_nobody_else() -> None:
    ingress, recorder = endpoint(HttpAuth("shared-secret"))
    async with client_for(ingress) as http:
        denied = await http.post(
            "/v1/messages", content=codec.encode(risk_message()), headers=MSGPACK
        )
        allowed = await http.post(
            "/v1/messages", content=codec.encode(risk_message()),
            headers={**MSGPACK, "Authorization": "Bearer shared-secret"},
        )  # fmt: skip
    assert (denied.status_code, allowed.status_code) == (401, 200)
    assert len(recorder.received) == 1


async def test_too_large_bodies_are_refused_with_or_without_a_length() -> None:
    ingress, recorder = endpoint(max_body=1_000)
    big = codec.encode(risk_message(payload={"blob": "x" * 5_000}))

    async def chunks() -> Any:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    async with client_for(ingress) as http:
        declared = await http.post("/v1/messages", content=big, headers=MSGPACK)
        chunked = await http.post("/v1/messages", content=chunks(), headers=MSGPACK)
    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert ingress.counts["too_large"] == 2
    assert recorder.received == []


bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda n: codec.encode(risk_message())[:n], st.integers(0, 150)),
    st.builds(lambda v: msgspec.json.encode(v), st.recursive(
        st.none() | st.integers() | st.text(max_size=10), lambda c: st.lists(c, max_size=3)
        | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=10,
    )),
)  # fmt: skip
content_types = st.sampled_from(
    ["application/msgpack", "application/json", "text/plain", "", "application/json; charset=utf-8"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=bodies, content_type=content_types)
@example(raw=b"[[-9223372036854775809]]", content_type="application/json")  # was a 500
def test_malformed_bodies_are_4xx_with_a_reason_and_counted(raw: bytes, content_type: str) -> None:
    async def post() -> tuple[httpx.Response, MessagesEndpoint]:
        ingress, _ = endpoint()
        async with client_for(ingress) as http:
            return await http.post(
                "/v1/messages", content=raw, headers={"Content-Type": content_type}
            ), ingress

    answer, ingress = asyncio.run(post())
    if answer.status_code == 200:
        return  # a well-formed message after all (the truncation at full length)
    assert answer.status_code in (400, 415), answer.text
    assert answer.json()["error"]
    assert ingress.counts["malformed"] + ingress.counts["unsupported_media"] == 1


def test_identities() -> None:
    auth = HttpAuth(None, DIGESTS)
    risk = auth.identify(f"Bearer {TOKENS['risk']}")
    assert risk is not None
    assert risk.engine is EngineType.RISK
    assert auth.identify(None) is None
    assert HttpAuth().identify(None) is not None  # open: nothing configured
    assert "secret" not in repr(HttpAuth("risk-secret", DIGESTS))
