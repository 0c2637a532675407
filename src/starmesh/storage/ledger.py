"""What one engine sees of the storage: records go in without waiting, history comes back.

The composition root gives each engine that keeps state an :class:`EngineLedger`; the engine
never sees SQL. Every record is checked first: a bad one raises :class:`InvalidRecordError`
and is counted in ``rejected``, and nothing of it is queued.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starmesh.storage.errors import InvalidRecordError
from starmesh.storage.history import read_last_checkpoint
from starmesh.storage.records import (
    AlertRecord,
    CheckpointRecord,
    EquityRecord,
    FillRecord,
    Record,
)

if TYPE_CHECKING:
    from starmesh.storage.store import Storage

__all__ = ["EngineLedger"]

logger = logging.getLogger(__name__)


class EngineLedger:
    def __init__(self, storage: Storage, engine: str, account: str) -> None:
        self.storage = storage
        self.engine = engine
        self.account = account
        self.checkpoint_interval_s = storage.checkpoint_interval_s
        self.rejected = 0
        self._checkpoint_seq = 0

    @property
    def shown(self) -> str:
        """The database, as a user may see it (no password)."""
        return self.storage.database.shown

    # --- writing -----------------------------------------------------------------------------

    def has_room(self, records: int = 1) -> bool:
        """False while the write queue is full: make no new records that can be avoided."""
        return self.storage.writer.has_room(records)

    def check(self, record: Record) -> None:
        """Raise :class:`InvalidRecordError` (and count it) if ``record`` is not fit to keep."""
        try:
            record.validate()
        except InvalidRecordError:
            self.rejected += 1
            raise

    def record(self, record: Record, *, replaceable: bool = False) -> bool:
        """Check ``record`` and queue it; False only if ``replaceable`` and the queue is full."""
        self.check(record)
        return self.storage.writer.put(record, replaceable=replaceable)

    def checkpoint(self, state: str, ts_ns: int) -> CheckpointRecord | None:
        """Queue a snapshot of the engine's state (JSON); None if the queue is full."""
        seq = self._checkpoint_seq + 1
        record = CheckpointRecord(
            engine=self.engine, account=self.account, seq=seq, ts_ns=ts_ns, state=state
        )
        if not self.record(record, replaceable=True):
            return None
        self._checkpoint_seq = record.seq
        return record

    # --- reading -----------------------------------------------------------------------------

    async def fills(self, *, limit: int | None = None) -> list[FillRecord]:
        """This account's fills in the order they were made (the last ``limit`` if given)."""
        return await self.storage.fills(account=self.account, limit=limit)

    async def alerts(self, *, limit: int | None = None) -> list[AlertRecord]:
        """The alert log (every engine's), oldest first."""
        return await self.storage.alerts(limit=limit)

    async def equity(self, *, limit: int | None = None) -> list[EquityRecord]:
        """This account's equity curve, oldest first."""
        return await self.storage.equity(account=self.account, limit=limit)

    async def last_checkpoint(self) -> CheckpointRecord | None:
        await self.storage.writer.flush()
        found = await read_last_checkpoint(self.storage.database, self.engine, self.account)
        if found is not None:
            self._checkpoint_seq = max(self._checkpoint_seq, found.seq)
        return found

    def stats(self) -> dict[str, Any]:
        """For the engine's heartbeat: the shared writer's figures and this engine's refusals."""
        return {**self.storage.writer.stats(), "rejected": self.rejected}
