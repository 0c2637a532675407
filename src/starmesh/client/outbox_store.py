"""The outbox on disk: a SQLite file (the stdlib ``sqlite3``), used from one worker thread.

Writes of one event-loop tick are committed together (group commit), in WAL mode with
``synchronous=FULL``: once ``add`` returns, the messages survive a crash of the process (and
of the machine). The event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["OutboxStore", "StoredRow"]

StoredRow = tuple[int, str, int, bytes]
"""(seq, target engine or '' for 'route when the bus returns', priority, message bytes)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, target TEXT NOT NULL, priority INTEGER NOT NULL, data BLOB NOT NULL
)
"""


class OutboxStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="starmesh-outbox")
        self._db: sqlite3.Connection | None = None
        self._adds: list[StoredRow] = []
        self._deletes: list[int] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._scheduled = False

    async def open(self) -> list[StoredRow]:
        """Open (or create) the file; the rows it holds, in seq order."""
        rows: list[StoredRow] = await self._run(self._open)
        return rows

    async def add(self, rows: Sequence[StoredRow]) -> None:
        """Returns once ``rows`` are committed."""
        self._adds.extend(rows)
        await self._commit_soon()

    async def delete(self, seqs: Sequence[int]) -> None:
        self._deletes.extend(seqs)
        await self._commit_soon()

    async def close(self) -> None:
        await self._run(self._close)
        self._thread.shutdown(wait=True)

    def _commit_soon(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(lambda: asyncio.ensure_future(self._commit()))
        return future

    async def _commit(self) -> None:
        self._scheduled = False
        adds, self._adds = self._adds, []
        deletes, self._deletes = self._deletes, []
        waiting, self._waiting = self._waiting, []
        try:
            await self._run(self._write, adds, deletes)
        except Exception as exc:
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for future in waiting:
            if not future.done():
                future.set_result(None)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    # --- in the worker thread ----------------------------------------------------------------

    def _open(self) -> list[StoredRow]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        self._db = db
        rows = db.execute("SELECT seq, target, priority, data FROM outbox ORDER BY seq")
        return [(int(s), str(t), int(p), bytes(d)) for s, t, p, d in rows]

    def _write(self, adds: list[StoredRow], deletes: list[int]) -> None:
        assert self._db is not None
        with self._db:  # one transaction: one fsync for the whole tick
            self._db.execute("BEGIN")
            if adds:
                self._db.executemany("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?)", adds)
            if deletes:
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in deletes])

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
