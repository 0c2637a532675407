"""What the source tests share: fixture files, a recording sleep, leak checks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from starmesh.marketdata.source import Source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sources"


def fixture_bytes(source: str, name: str) -> bytes:
    """The recorded answer ``name`` of ``source``, as the provider sent it."""
    return (FIXTURES / source / name).read_bytes()


def fixture_json(source: str, name: str) -> Any:
    return json.loads(fixture_bytes(source, name))


def answer(
    source: str,
    name: str,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A recorded answer to serve through respx."""
    return httpx.Response(
        status,
        content=fixture_bytes(source, name),
        headers={"Content-Type": content_type, **(headers or {})},
    )


def query(request: httpx.Request) -> dict[str, str]:
    """The request's query parameters (each name once)."""
    return dict(request.url.params.multi_items())


class RecordingSleep:
    """An ``asyncio.sleep`` stand-in that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def error_texts(error: BaseException) -> list[str]:
    """``str`` and ``repr`` of an error and of everything chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current)]
        pending += [current.__cause__, current.__context__]
    return texts


def assert_secret_hidden(
    secret: str,
    *,
    caplog: pytest.LogCaptureFixture,
    source: Source,
    errors: list[BaseException],
) -> None:
    """The secret is in no log record, no repr or status of the source, no error or its chain."""
    assert caplog.records, "the test should have produced log records to check"
    for record in caplog.records:
        assert secret not in record.getMessage(), record.getMessage()
        assert secret not in str(record.args)
    assert secret not in caplog.text
    assert secret not in repr(source)
    assert secret not in str(source.status())
    assert errors
    for error in errors:
        for text in error_texts(error):
            assert secret not in text, text


def capture_all_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG, httpx's and httpcore's included."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "starmesh", "tenacity"):
        caplog.set_level(logging.DEBUG, logger=name)
