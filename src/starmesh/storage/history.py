"""Reading the ledger back: fills in the order they were made, the alert log, checkpoints."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select, func, select

from starmesh.storage.database import Database
from starmesh.storage.records import AlertRecord, CheckpointRecord, EquityRecord, FillRecord
from starmesh.storage.schema import alerts, checkpoints, equity, fills

__all__ = ["count_fills", "read_alerts", "read_equity", "read_fills", "read_last_checkpoint"]

R = TypeVar("R", FillRecord, AlertRecord, CheckpointRecord, EquityRecord)


async def _read(database: Database, query: Select[tuple[object, ...]], cls: type[R]) -> list[R]:
    async with database.engine.connect() as connection:
        result = await connection.execute(query)
        names = [str(name) for name in result.keys()]  # noqa: SIM118  (a str subclass)
        return [msgspec.convert(dict(zip(names, row, strict=True)), cls) for row in result]


async def _read_last(
    database: Database,
    query: Select[tuple[object, ...]],
    order: tuple[Any, ...],
    limit: int | None,
    cls: type[R],
) -> list[R]:
    """The rows of ``query`` in ``order``: all of them, or the last ``limit``."""
    if limit is None:
        return await _read(database, query.order_by(*order), cls)
    newest_first = query.order_by(*(column.desc() for column in order)).limit(limit)
    return list(reversed(await _read(database, newest_first, cls)))


async def read_fills(
    database: Database,
    *,
    account: str | None = None,
    since_ns: int | None = None,
    limit: int | None = None,
) -> list[FillRecord]:
    """Fills of ``account`` (every account if None), in the order they were made (the last
    ``limit`` of them if given)."""
    query = select(fills)
    if account is not None:
        query = query.where(fills.c.account == account)
    if since_ns is not None:
        query = query.where(fills.c.ts_ns >= since_ns)
    order = (fills.c.account, fills.c.seq, fills.c.id)
    return await _read_last(database, query, order, limit, FillRecord)


async def count_fills(database: Database, *, account: str | None = None) -> int:
    query = select(func.count()).select_from(fills)
    if account is not None:
        query = query.where(fills.c.account == account)
    async with database.engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def read_alerts(
    database: Database, *, since_ns: int | None = None, limit: int | None = None
) -> list[AlertRecord]:
    """Every alert and clearance (the last ``limit`` if given), oldest first."""
    query = select(alerts)
    if since_ns is not None:
        query = query.where(alerts.c.ts_ns >= since_ns)
    return await _read_last(database, query, (alerts.c.ts_ns, alerts.c.id), limit, AlertRecord)


async def read_equity(
    database: Database,
    *,
    account: str | None = None,
    since_ns: int | None = None,
    limit: int | None = None,
) -> list[EquityRecord]:
    """The equity curve of ``account`` (every account if None; the last ``limit`` snapshots if
    given), oldest first: one snapshot per instant, the book at its end."""
    query = select(equity)
    if account is not None:
        query = query.where(equity.c.account == account)
    if since_ns is not None:
        query = query.where(equity.c.ts_ns >= since_ns)
    order = (equity.c.ts_ns, equity.c.account)
    return await _read_last(database, query, order, limit, EquityRecord)


async def read_last_checkpoint(
    database: Database, engine: str, account: str
) -> CheckpointRecord | None:
    query = (
        select(checkpoints)
        .where(checkpoints.c.engine == engine, checkpoints.c.account == account)
        .order_by(checkpoints.c.seq.desc())
        .limit(1)
    )
    found = await _read(database, query, CheckpointRecord)
    return found[0] if found else None
