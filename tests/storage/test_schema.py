"""The schema on real databases: migrations run up from empty and build exactly the code's
tables; a platform refuses an older schema, and a newer one."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from starmesh.storage import (
    Database,
    SchemaOutOfDateError,
    Storage,
    current_revision,
    head_revision,
    upgrade,
)
from starmesh.storage.schema import metadata


async def prepare(database_url: str, revision: str | None, *statements: str) -> None:
    """Bring the database to ``revision`` (None: leave it empty), then run ``statements``."""
    database = Database(database_url)
    try:
        if revision is not None:
            await upgrade(database, revision)
        async with database.engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await database.dispose()


def differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_migrations_run_up_from_empty_to_exactly_the_codes_schema(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert await current_revision(database) is None
        assert await upgrade(database) == (None, head_revision())
        assert await current_revision(database) == head_revision() == "0003"
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            assert set(tables) >= {
                "fills", "signals", "alerts", "equity", "checkpoints", "processed_messages"
            }  # fmt: skip
            assert await connection.run_sync(differences) == []
        assert await upgrade(database) == ("0003", "0003")  # a second run changes nothing
    finally:
        await database.dispose()


async def test_a_new_empty_database_gets_the_schema_when_a_platform_opens_it(
    database_url: str,
) -> None:
    storage = await Storage.open(database_url)
    try:
        assert storage.revision == head_revision()
    finally:
        await storage.close()


async def test_an_older_schema_is_refused_with_the_command_that_upgrades_it(
    database_url: str,
) -> None:
    await prepare(database_url, "0001")  # the ledger before engine checkpoints existed
    with pytest.raises(SchemaOutOfDateError) as refused:
        await Storage.open(database_url)
    message = str(refused.value)
    assert "schema revision 0001, older than this starmesh's 0003" in message
    assert "starmesh db upgrade --database-url" in message
    database = Database(database_url)
    try:
        assert await upgrade(database) == ("0001", "0003")
    finally:
        await database.dispose()
    storage = await Storage.open(database_url)
    await storage.close()


async def test_a_schema_from_a_newer_starmesh_is_refused(database_url: str) -> None:
    await prepare(database_url, "head", "UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(SchemaOutOfDateError, match="written by a newer starmesh"):
        await Storage.open(database_url)


async def test_a_database_holding_other_tables_is_not_taken_over(database_url: str) -> None:
    await prepare(database_url, None, "CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(SchemaOutOfDateError, match="give starmesh a database of its own"):
        await Storage.open(database_url)


@pytest.mark.parametrize("attempt", range(5))
async def test_engines_opening_a_new_database_at_once_all_get_the_schema(
    database_url: str, attempt: int
) -> None:
    """Several engine processes start on one new ledger (two Strategy instances, say): one
    creates the schema, and none of the others takes the half-seen result for foreign tables
    (it did, reading "no revision" before and "tables" after the creator's commit)."""
    opened = await asyncio.gather(
        *(Storage.open(database_url) for _ in range(6)), return_exceptions=True
    )
    try:
        refused = [repr(o) for o in opened if isinstance(o, BaseException)]
        assert refused == []
        assert {o.revision for o in opened if isinstance(o, Storage)} == {head_revision()}
    finally:
        for storage in opened:
            if isinstance(storage, Storage):
                await storage.close()
