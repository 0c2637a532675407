"""The PostgreSQL the suite uses: the server on 127.0.0.1:5432 (trust auth, user postgres) or
the one ``STARMESH_TEST_POSTGRES_URL`` names, with a database of the session's own."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("STARMESH_TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL


async def _execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def create_postgres_database() -> tuple[str, str]:
    """(the server's admin URL, the URL of a new database with a unique name)."""
    admin = admin_url()
    name = f"starmesh_test_{uuid.uuid4().hex[:12]}"
    try:
        await _execute(admin, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # whatever the driver raises: no server, no access
        shown = make_url(admin).render_as_string(hide_password=True)
        pytest.fail(
            f"no PostgreSQL server answers at {shown} ({type(exc).__name__}: {exc}). The "
            "ledger's tests need one: start PostgreSQL 15 on 127.0.0.1:5432 with trust auth "
            "for user postgres, or set STARMESH_TEST_POSTGRES_URL to a server where that user "
            "may create databases.",
            pytrace=False,
        )
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    return admin, url


async def drop_postgres_database(admin: str, url: str) -> None:
    name = make_url(url).database
    await _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def empty_postgres_database(url: str) -> None:
    await _execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
