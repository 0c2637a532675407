"""The ledger's writer: records are queued by handlers without waiting and written by one
task in batches, each batch one transaction.

- **Never in the way.** ``put`` appends to a queue and returns; the writer takes whatever
  has gathered while the previous commit ran (group commit), so under load a batch grows and
  at rest a record is written as soon as it arrives.
- **Bounded, with back-pressure.** Past ``capacity`` the queue is *full*: counted, and
  ``has_room`` says no, so the producer can stop making records (Portfolio places no new
  order). A record of something that already happened (a fill, an alert) is still taken:
  losing it would be worse than passing the bound, and its producer is the one that stops.
  Only a replaceable record (an equity snapshot, a checkpoint) is refused when full.
- **Nothing dropped on a database fault.** A failed transaction is retried with backoff,
  the records kept in order. A row the database refuses as such (a constraint) is found by
  writing the batch's rows one by one; it alone is logged in full and counted as failed.
  Only ``close`` gives up, after its timeout, and logs what it could not write.
- **Idempotent.** ``INSERT ... ON CONFLICT DO NOTHING`` on each record's key: a record offered
  twice is kept once, and counted as a duplicate.
- **Flushable.** ``flush()`` returns once everything queued before it is written: what a
  backtest on a simulated clock calls at the points it chooses (with ``background=False``
  nothing is written except by ``flush``, so batches are the same every run).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from starmesh.storage.database import Database
from starmesh.storage.errors import StorageError
from starmesh.storage.records import Record

__all__ = ["LedgerWriter"]

logger = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.05
_SHOWN_IDS = 10


class LedgerWriter:
    def __init__(
        self,
        database: Database,
        *,
        capacity: int = 100_000,
        batch: int = 2_000,
        background: bool = True,
        retry_max_s: float = 2.0,
    ) -> None:
        if capacity < 1 or batch < 1:
            raise ValueError("capacity and batch must be positive")
        self.database = database
        self.capacity = capacity
        self.batch = batch
        self.background = background
        self.retry_max_s = retry_max_s
        self._queue: deque[Record] = deque()
        self._in_flight = 0
        self._queued_total = 0
        self._settled_total = 0
        """Records written, found duplicate, failed or lost: no longer the writer's to do."""
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._give_up_at: float | None = None
        self._draining = asyncio.Lock()
        self.counts = {
            "written": 0, "duplicates": 0, "full": 0, "refused_full": 0, "failed": 0,
            "lost": 0, "write_errors": 0, "batches": 0,
        }  # fmt: skip
        self.last_error: str | None = None

    # --- producers ---------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Records queued or being written."""
        return len(self._queue) + self._in_flight

    def has_room(self, records: int = 1) -> bool:
        return self.backlog + records <= self.capacity

    def put(self, record: Record, *, replaceable: bool = False) -> bool:
        """Queue ``record`` (already validated); False if refused because the queue is full
        and the record is ``replaceable``. Never waits."""
        if self._closing:
            raise StorageError(f"the ledger at {self.database.shown} is closed")
        if self.backlog >= self.capacity:
            self.counts["full"] += 1
            if replaceable:
                self.counts["refused_full"] += 1
                return False
        self._queue.append(record)
        self._queued_total += 1
        self._wake.set()
        return True

    # --- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self.background and self._task is None:
            self._task = asyncio.create_task(self._run(), name="starmesh:ledger-writer")

    async def flush(self, timeout: float | None = None) -> None:
        """Return once every record queued before the call is in the database (or failed)."""
        if not self.background:
            await asyncio.wait_for(self._drain(), timeout)
            return
        target = self._queued_total
        if self._settled_total >= target:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await asyncio.wait_for(future, timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (for at most ``timeout`` seconds of retries), then stop."""
        if self._closing:
            return
        self._closing = True
        self._give_up_at = asyncio.get_running_loop().time() + timeout
        self._wake.set()
        if self._task is not None:
            await self._task
        else:
            await self._drain()
        if self._queue:
            self._lose(list(self._queue))
            self._queue.clear()
        await self.database.release()

    def stats(self) -> dict[str, Any]:
        return {"backlog": self.backlog, "capacity": self.capacity, **self.counts,
                "last_error": self.last_error}  # fmt: skip

    # --- the writer ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._drain()

    async def _drain(self) -> None:
        async with self._draining:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
                size = self._in_flight = len(batch)
                try:
                    if not await self._write(batch):
                        self._lose(batch)
                except Exception:  # a bug, not the database: say what it cost
                    logger.exception("ledger %s: the writer failed", self.database.shown)
                    self._lose(batch)
                finally:
                    self._in_flight = 0
                self._settle(size)

    async def _write(self, batch: list[Record]) -> bool:
        """Write ``batch``, retrying what can be retried; False if given up (closing), with
        what is left of it still in ``batch``."""
        delay = _RETRY_FIRST_S
        loop = asyncio.get_running_loop()
        isolate = False
        while True:
            try:
                if isolate:
                    await self._one_by_one(batch)
                else:
                    await self._insert(batch)
                return True
            except (IntegrityError, DataError):
                isolate = True  # a row the database refuses: find it, keep the others
                continue
            except (SQLAlchemyError, OSError) as exc:
                self.counts["write_errors"] += 1
                if self.last_error is None:
                    logger.warning("ledger %s: writing failed (%s); retrying",
                                   self.database.shown, exc)  # fmt: skip
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if self._give_up_at is not None and loop.time() >= self._give_up_at:
                return False
            wait = delay if self._give_up_at is None else min(delay, self._give_up_at - loop.time())
            await asyncio.sleep(max(0.0, wait))
            delay = min(delay * 2, self.retry_max_s)

    async def _insert(self, batch: Iterable[Record]) -> None:
        by_table: dict[Table, dict[str, dict[str, object]]] = {}
        offered = 0
        for record in batch:
            offered += 1
            by_table.setdefault(record.table, {}).setdefault(record.key, record.row())
        written = await self.database.write(
            {t: list(rows.values()) for t, rows in by_table.items()}
        )
        self.counts["batches"] += 1
        self.counts["written"] += written
        self.counts["duplicates"] += offered - written
        self.last_error = None

    async def _one_by_one(self, batch: list[Record]) -> None:
        """Write ``batch`` a row at a time, removing each row once done; a row the database
        refuses is logged in full and counted. A fault of the database itself propagates."""
        while batch:
            record = batch[0]
            try:
                await self._insert((record,))
            except (IntegrityError, DataError) as exc:
                self.counts["failed"] += 1
                logger.error(
                    "ledger %s refused %s %r: %s; the record: %r",
                    self.database.shown, record.what, record.key, exc.orig, record,
                )  # fmt: skip
            batch.pop(0)

    def _lose(self, records: list[Record]) -> None:
        self.counts["lost"] += len(records)
        shown = ", ".join(f"{r.what} {r.key!r}" for r in records[:_SHOWN_IDS])
        more = f" and {len(records) - _SHOWN_IDS} more" if len(records) > _SHOWN_IDS else ""
        logger.error(
            "ledger %s: %d records NOT written before stopping (%s): %s%s",
            self.database.shown, len(records), self.last_error, shown, more,
        )  # fmt: skip

    def _settle(self, records: int) -> None:
        self._settled_total += records
        done = [(t, f) for t, f in self._waiters if t <= self._settled_total]
        if done:
            self._waiters = [(t, f) for t, f in self._waiters if t > self._settled_total]
            for _, future in done:
                if not future.done():
                    future.set_result(None)
