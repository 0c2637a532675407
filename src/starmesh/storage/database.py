"""One database, SQLite or PostgreSQL, behind SQLAlchemy's async engine.

SQLite (aiosqlite) is made a real transactional store: write-ahead log, ``synchronous=FULL``
(a commit is on disk before it returns, so a process killed after it loses nothing), a busy
timeout so several engine processes can share one file, and transactions that begin when
SQLAlchemy says so (``BEGIN IMMEDIATE``), which also makes migrations atomic. An in-memory
database is one connection shared by everyone (each connection would see its own).

:meth:`Database.write` is the ledger writer's one statement per table: it runs on the event
loop the engines share, so it takes the cheapest path each driver has (measured for a batch
of two rows, event-loop time: SQLAlchemy's execution on aiosqlite 1.4 ms, aiosqlite's own
``executemany`` 0.24 ms; on asyncpg 2.1 ms with a connection checked out per batch, 0.9 ms
with one held).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite
from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from starmesh.storage.errors import StorageError
from starmesh.storage.url import parse_database_url, redact, sqlite_file

__all__ = ["Database"]

_SQLITE_BUSY_MS = 10_000


class Database:
    """The engine of one URL; ``shown`` is the URL without its password."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """``create=False``: a SQLite file must exist already (a reader never makes one)."""
        self.url: URL = parse_database_url(url)
        self.shown = redact(self.url)
        self.dialect = "postgresql" if self.url.drivername.startswith("postgresql") else "sqlite"
        path = sqlite_file(self.url)
        self.in_memory = self.dialect == "sqlite" and path is None
        if not create and path is not None and not path.exists():
            raise StorageError(f"there is no ledger at {self.shown}: {path} does not exist")
        self.engine: AsyncEngine = self._create_engine()
        self._inserts: dict[Table, Insert] = {}
        self._plain_inserts: dict[Table, tuple[str, list[str]]] = {}
        self._held: AsyncConnection | None = None

    def _create_engine(self) -> AsyncEngine:
        if self.dialect == "postgresql":
            # No pre-ping: it is a round trip at every checkout (most of a small batch's cost);
            # a connection lost meanwhile fails its batch, which the writer retries.
            return create_async_engine(self.url, pool_size=2, max_overflow=2)
        path = sqlite_file(self.url)
        if path is None:
            engine = create_async_engine(
                self.url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(self.url)
        _make_sqlite_transactional(engine, wal=path is not None)
        return engine

    def insert(self, table: Table) -> Insert:
        """``INSERT`` into ``table`` that skips a row whose primary key is already there and
        returns the keys of the rows it wrote. Built once per table (building and caching a
        statement anew costs more than a small batch's insert)."""
        statement = self._inserts.get(table)
        if statement is None:
            keys = table.primary_key.columns
            dialect = postgresql if self.dialect == "postgresql" else sqlite
            statement = dialect.insert(table).on_conflict_do_nothing(
                index_elements=[column.name for column in keys]
            )
            statement = self._inserts[table] = statement.returning(*keys)
        return statement

    Rows = Mapping[Table, Sequence[Mapping[str, object]]]

    async def write(self, rows: Rows) -> int:
        """Insert ``rows`` (table -> rows, each key once) in one transaction, skipping a row
        whose key is there already; how many were new. Raises SQLAlchemy's ``IntegrityError``
        or ``DataError`` for a row the database refuses, another ``DBAPIError`` for a fault of
        the database (after which the next call starts afresh)."""
        try:
            if self._held is None:
                self._held = await self.engine.connect()
            if self.dialect == "sqlite":
                return await self._write_sqlite(self._held, rows)
            written = 0
            async with self._held.begin():
                for table, table_rows in rows.items():
                    result = await self._held.execute(self.insert(table), list(table_rows))
                    written += len(result.all())
            return written
        except DBAPIError as exc:
            if not isinstance(exc, IntegrityError | DataError):
                await self.release()
            raise
        finally:
            if self.in_memory:  # its one connection is everyone's: never keep it
                await self.release()

    async def _write_sqlite(self, connection: AsyncConnection, rows: Rows) -> int:
        raw = (await connection.get_raw_connection()).driver_connection
        assert isinstance(raw, aiosqlite.Connection)
        sql = "BEGIN IMMEDIATE"
        try:
            await raw.execute(sql)
            written = 0
            for table, table_rows in rows.items():
                sql, names = self._plain_insert(table)
                values = [tuple(row[name] for name in names) for row in table_rows]
                written += (await raw.executemany(sql, values)).rowcount
            await raw.commit()
            return written
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                await raw.rollback()
            kind = (
                IntegrityError if isinstance(exc, sqlite3.IntegrityError)
                else DataError if isinstance(exc, sqlite3.DataError)
                else OperationalError
            )  # fmt: skip
            raise kind(sql, None, exc) from exc

    def _plain_insert(self, table: Table) -> tuple[str, list[str]]:
        """``insert(table)`` without RETURNING as SQL text, and its parameters' order."""
        found = self._plain_inserts.get(table)
        if found is None:
            keys = [column.name for column in table.primary_key.columns]
            compiled = (
                sqlite.insert(table)
                .on_conflict_do_nothing(index_elements=keys)
                .compile(dialect=self.engine.dialect)
            )
            found = self._plain_inserts[table] = (str(compiled), list(compiled.positiontup or ()))
        return found

    async def release(self) -> None:
        """Give back the connection :meth:`write` holds (PostgreSQL)."""
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(DBAPIError, OSError):
                await held.close()

    async def dispose(self) -> None:
        await self.release()
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.shown!r})"


def _make_sqlite_transactional(engine: AsyncEngine, *, wal: bool) -> None:
    """The pysqlite driver's own transaction handling defers BEGIN and commits DDL on its own;
    take it over (SQLAlchemy's documented recipe for SQLite)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN / COMMIT
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        if wal:
            _turn_wal_on(cursor)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _turn_wal_on(cursor: Any) -> None:
    """WAL is a property of the file: once on, it stays on. Turning it on needs the file to
    itself for an instant, and SQLite then answers "locked" at once instead of waiting out
    the busy timeout; engine processes creating one ledger together retry (at start-up only,
    for at most the busy timeout)."""
    give_up_at = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up_at:
                raise
        time.sleep(0.005)  # a connect is synchronous here; the creator holds it for ms
