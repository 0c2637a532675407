"""The schema's version: Alembic's migrations, shipped in the package, run on our connection.

``upgrade`` brings any database to the code's revision (``starmesh db upgrade``).
``ensure_current`` is what a starting platform calls: a database with no schema at all is
given the current one (there is nothing to migrate); one whose schema is older than the code
is refused, with the command that upgrades it, because migrating live money is an operator's
decision; one written by a newer starmesh is refused too.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import DBAPIError

from starmesh.storage.database import Database
from starmesh.storage.errors import SchemaOutOfDateError

__all__ = ["current_revision", "ensure_current", "head_revision", "upgrade"]

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"

# Alembic keeps its migration context in module globals (``alembic.context``, ``alembic.op``):
# two upgrades interleaving on one event loop would share it. One at a time per loop.
_upgrading: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    """The revision this code's schema is at."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships its migrations"
    return head


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(database: Database) -> str | None:
    """The database's revision; None when it has no starmesh schema."""
    async with database.engine.connect() as connection:
        return await connection.run_sync(_revision)


async def upgrade(database: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations up to ``revision``, in one transaction; (before, after)."""
    config = _config()

    def run(connection: Connection) -> tuple[str | None, str | None]:
        before = _revision(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        return before, _revision(connection)

    lock = _upgrading.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, database.engine.begin() as connection:
        before, after = await connection.run_sync(run)
    if before != after:
        logger.info("ledger %s upgraded from %s to %s", database.shown, before, after)
    return before, after


async def ensure_current(database: Database, *, create: bool = True) -> str:
    """The revision, once the schema is the code's; see the module's docstring. With
    ``create=False`` (a reader) an empty database is refused rather than set up."""
    head = head_revision()
    # Tables first, then the revision: another process creating the schema commits both at
    # once, so tables seen here mean its revision is seen next. The other order read "no
    # revision", then that process's tables, and refused them as another application's.
    has_tables = await _has_tables(database)
    revision = await current_revision(database)
    if revision is None and not has_tables:
        if not create:
            raise SchemaOutOfDateError(
                f"the database {database.shown} holds no ledger yet: nothing has been recorded"
            )
        try:
            await upgrade(database)
        except DBAPIError:
            # Another process created it at the same moment: fine if it is now current.
            if await current_revision(database) != head:
                raise
        logger.info("created the ledger's schema in %s", database.shown)
        return head
    if revision == head:
        return head
    if revision is not None and _is_older(revision):
        raise SchemaOutOfDateError(
            f"the ledger database {database.shown} has schema revision {revision}, older than "
            f"this starmesh's {head}: back it up, then run "
            f"`starmesh db upgrade --database-url {database.shown}`"
        )
    if revision is None:
        raise SchemaOutOfDateError(
            f"the database {database.shown} has tables but no starmesh schema revision: "
            "give starmesh a database of its own"
        )
    raise SchemaOutOfDateError(
        f"the ledger database {database.shown} has schema revision {revision}, which this "
        f"starmesh (at {head}) does not know: it was written by a newer starmesh; upgrade it"
    )


def _is_older(revision: str) -> bool:
    script = ScriptDirectory.from_config(_config())
    return any(r.revision == revision for r in script.walk_revisions())


async def _has_tables(database: Database) -> bool:
    async with database.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return bool(names)
