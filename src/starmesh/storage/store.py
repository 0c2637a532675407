"""The storage of one process: the database, its schema checked, and the one writer every
engine of the process shares."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError

from starmesh.core.config import Settings
from starmesh.storage.database import Database
from starmesh.storage.errors import StorageError
from starmesh.storage.history import read_alerts, read_equity, read_fills
from starmesh.storage.ledger import EngineLedger
from starmesh.storage.migrate import ensure_current
from starmesh.storage.processed import ProcessedMessages
from starmesh.storage.records import AlertRecord, EquityRecord, FillRecord
from starmesh.storage.url import database_url
from starmesh.storage.writer import LedgerWriter

__all__ = ["Storage"]

logger = logging.getLogger(__name__)


class Storage:
    def __init__(
        self,
        database: Database,
        *,
        capacity: int = 100_000,
        batch: int = 2_000,
        checkpoint_interval_s: float = 5.0,
        background: bool = True,
    ) -> None:
        self.database = database
        self.writer = LedgerWriter(database, capacity=capacity, batch=batch,
                                   background=background)  # fmt: skip
        self.checkpoint_interval_s = checkpoint_interval_s
        self.revision: str | None = None

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        background: bool = True,
        create: bool = True,
    ) -> Storage:
        """Connect to ``url`` (default: ``STARMESH_DATABASE_URL``, else the embedded file),
        check its schema (see :func:`~starmesh.storage.migrate.ensure_current`; ``create``
        False to only read) and start the writer. Raises :class:`StorageError` saying what to
        do when it cannot."""
        settings = settings or Settings()
        database = Database(database_url(url, settings), create=create)
        storage = cls(database, capacity=settings.ledger_capacity, batch=settings.ledger_batch,
                      checkpoint_interval_s=settings.checkpoint_interval_s,
                      background=background)  # fmt: skip
        try:
            storage.revision = await ensure_current(database, create=create)
        except (DBAPIError, OSError) as exc:
            await database.dispose()
            raise StorageError(
                f"cannot use the ledger database {database.shown}: {_reason(exc)}"
            ) from None
        except BaseException:
            await database.dispose()
            raise
        storage.writer.start()
        logger.info("ledger: %s (schema %s)", database.shown, storage.revision)
        return storage

    def ledger(self, engine: str, account: str) -> EngineLedger:
        return EngineLedger(self, engine, account)

    def processed_messages(self, consumer: str) -> ProcessedMessages:
        """Effects committed once per message for ``consumer`` (see :mod:`.processed`)."""
        return ProcessedMessages(self.database, consumer)

    async def flush(self, timeout: float | None = None) -> None:
        await self.writer.flush(timeout)

    async def keep_up(self) -> None:
        """Write what is queued once the queue is half full: for a producer faster than the
        database (a simulated clock), so its queue never fills at a point that depends on the
        machine."""
        writer = self.writer
        if writer.backlog > writer.capacity // 2:
            await writer.flush()

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (retrying for at most ``timeout`` s), then disconnect."""
        try:
            await self.writer.close(timeout)
        finally:
            await self.database.dispose()

    # --- history --------------------------------------------------------------------------------

    async def fills(
        self, *, account: str | None = None, since_ns: int | None = None, limit: int | None = None
    ) -> list[FillRecord]:
        """Fills in the order they were made; what this process queued is written first."""
        await self.writer.flush()
        with self._reading():
            return await read_fills(self.database, account=account, since_ns=since_ns, limit=limit)

    async def alerts(
        self, *, since_ns: int | None = None, limit: int | None = None
    ) -> list[AlertRecord]:
        await self.writer.flush()
        with self._reading():
            return await read_alerts(self.database, since_ns=since_ns, limit=limit)

    async def equity(
        self, *, account: str | None = None, since_ns: int | None = None, limit: int | None = None
    ) -> list[EquityRecord]:
        await self.writer.flush()
        with self._reading():
            return await read_equity(self.database, account=account, since_ns=since_ns, limit=limit)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A database that cannot be read is a :class:`StorageError` saying which and why."""
        try:
            yield
        except (DBAPIError, OSError) as exc:
            raise StorageError(
                f"cannot read the ledger database {self.database.shown}: {_reason(exc)}"
            ) from exc


def _reason(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's statement dump."""
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {original}".strip()
