"""What a requester learns when a responder fails: the type always, the text only if safe."""

from __future__ import annotations

import pytest

from starmesh import EngineType, Message, RemoteError, Settings, create_messagebus_client
from starmesh.core.errors import InvalidRequestError


def leaky(request: Message) -> dict[str, object]:
    raise ConnectionError("postgresql://ledger:hunter2@10.0.0.9/ledger refused")


def careful(request: Message) -> dict[str, object]:
    raise InvalidRequestError("account must be 4 characters")


@pytest.mark.parametrize("expose", [False, True])
async def test_a_responders_exception_text_is_shown_only_when_configured(expose: bool) -> None:
    settings = Settings(expose_errors=expose)
    server = create_messagebus_client(EngineType.PORTFOLIO, settings=settings)
    caller = create_messagebus_client(EngineType.STRATEGY, settings=settings)
    await server.serve("portfolio.rpc.leaky", leaky)
    await server.serve("portfolio.rpc.careful", careful)
    async with server, caller:
        with pytest.raises(RemoteError) as caught:
            await caller.request("portfolio.rpc.leaky")
        assert caught.value.code == "ConnectionError"
        assert ("hunter2" in str(caught.value)) is expose
        with pytest.raises(RemoteError, match="account must be 4 characters"):
            await caller.request("portfolio.rpc.careful")  # starmesh's own errors: always


async def test_a_refusal_is_logged_in_one_line_and_a_failure_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = create_messagebus_client(EngineType.PORTFOLIO)
    caller = create_messagebus_client(EngineType.STRATEGY)
    await server.serve("portfolio.rpc.leaky", leaky)
    await server.serve("portfolio.rpc.careful", careful)
    async with server, caller:
        for topic in ("portfolio.rpc.careful", "portfolio.rpc.leaky"):
            with pytest.raises(RemoteError):
                await caller.request(topic)
    refusal, failure = (
        next(r for r in caplog.records if f"responder for {topic!r}" in r.getMessage())
        for topic in ("portfolio.rpc.careful", "portfolio.rpc.leaky")
    )
    assert (refusal.levelname, refusal.exc_info) == ("WARNING", None)
    assert "refused" in refusal.getMessage()
    assert "account must be 4 characters" in refusal.getMessage()
    assert failure.levelname == "ERROR"
    assert failure.exc_info is not None  # a bug: its traceback is in the log
