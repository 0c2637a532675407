"""Fixtures shared by every test package: private Redis servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from starmesh.testing import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server for the session; tests keep apart by key prefix (see ``key_prefix``)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    """The production layout: (MarketData Bus, Engine Logic Bus) on two servers."""
    marketdata, logic = RedisServer().start(), RedisServer().start()
    try:
        yield marketdata, logic
    finally:
        marketdata.stop()
        logic.stop()


@pytest.fixture
def redis_alone() -> Iterator[RedisServer]:
    """A server of the test's own, for tests that kill or restart it."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"
