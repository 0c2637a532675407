"""Fixtures shared by every test package: private Redis servers, a PostgreSQL database of
the session's own, a private data directory for each test, and worker processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from starmesh.testing import RedisServer
from tests.databases import (
    create_postgres_database,
    drop_postgres_database,
    empty_postgres_database,
)
from tests.processes.harness import Worker

# Hypothesis' per-example deadline measures wall time, and a loaded machine descheduling the
# test for 250 ms fails an example that is correct: what these tests check is behaviour.
settings.register_profile("starmesh", deadline=None)
settings.load_profile("starmesh")


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


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test (and every process it starts) keeps its embedded ledger in a directory of
    its own, never in the working tree, and never in a database the developer configured."""
    monkeypatch.setenv("STARMESH_DATA_DIR", str(tmp_path / "starmesh-data"))
    monkeypatch.delenv("STARMESH_DATABASE_URL", raising=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of the session's own on the PostgreSQL server (127.0.0.1:5432, or
    ``STARMESH_TEST_POSTGRES_URL``), dropped at the end. No server is a failure, not a skip."""
    admin, url = asyncio.run(create_postgres_database())
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_database(admin, url))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file of the test's own, or the session's PostgreSQL
    database emptied for the test."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(empty_postgres_database(url))
    return url


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Worker processes a test starts (``tests/processes/worker.py``), stopped at the end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()
