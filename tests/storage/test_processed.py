"""Effects once per message on real databases: a copy redelivered after a restart, a copy
racing the first, and an effect that fails leave exactly one committed effect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from starmesh import Message
from starmesh.storage import Effect, ProcessedMessages, Storage
from tests.messages import make_message

effects_metadata = MetaData()
effects = Table(
    "test_effects", effects_metadata, Column("n", Integer), Column("consumer", Text)
)  # fmt: skip


async def open_storage(database_url: str) -> Storage:
    storage = await Storage.open(database_url)
    async with storage.database.engine.begin() as connection:
        await connection.run_sync(effects_metadata.create_all)
    return storage


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    opened = await open_storage(database_url)
    try:
        yield opened
    finally:
        await opened.close()


def message(n: int, ts_ns: int = 1_795_000_000_000_000_000) -> Message:
    made = make_message("portfolio.fill.AAPL", payload={"n": n})
    return msgspec.structs.replace(made, id=f"msg-{n:04d}", ts_publish=ts_ns)


def record(n: int, consumer: str = "risk") -> Effect:
    async def effect(connection: AsyncConnection) -> None:
        await connection.execute(effects.insert(), {"n": n, "consumer": consumer})

    return effect


async def committed(storage: Storage) -> list[tuple[int, str]]:
    async with storage.database.engine.connect() as connection:
        query = select(effects.c.n, effects.c.consumer).order_by("n", "consumer")
        rows = await connection.execute(query)
        return [(row.n, row.consumer) for row in rows]


async def test_a_copy_of_a_handled_message_is_skipped_and_its_effect_not_run(
    storage: Storage,
) -> None:
    processed = storage.processed_messages("risk")
    assert await processed.apply(message(1), record(1)) is True
    assert await processed.apply(message(1), record(1)) is False
    assert await processed.apply(message(2), record(2)) is True
    assert await committed(storage) == [(1, "risk"), (2, "risk")]
    assert (processed.applied, processed.skipped) == (2, 1)
    assert await processed.handled("msg-0001") is True
    assert await processed.handled("msg-0003") is False


async def test_a_copy_redelivered_after_a_restart_is_skipped(database_url: str) -> None:
    """What a kill -9 between the commit and the acknowledgement leads to: the process that
    restarts knows nothing in memory, the database remembers."""
    first = await open_storage(database_url)
    try:
        assert await first.processed_messages("risk").apply(message(7), record(7))
    finally:
        await first.close()
    restarted = await open_storage(database_url)
    try:
        processed = restarted.processed_messages("risk")
        assert await processed.apply(message(7), record(7)) is False
        assert await committed(restarted) == [(7, "risk")]
    finally:
        await restarted.close()


async def test_an_effect_that_fails_commits_nothing_and_a_retry_applies_it(
    storage: Storage,
) -> None:
    processed = storage.processed_messages("risk")

    async def half_done(connection: AsyncConnection) -> None:
        await record(3)(connection)  # written, then the handler fails: rolled back with the id
        raise RuntimeError("the handler failed after writing")

    with pytest.raises(RuntimeError, match="after writing"):
        await processed.apply(message(3), half_done)
    assert await committed(storage) == []
    assert await processed.handled("msg-0003") is False
    assert await processed.apply(message(3), record(3)) is True  # the bus's retry
    assert await committed(storage) == [(3, "risk")]


async def test_two_copies_handled_at_the_same_time_commit_one_effect(storage: Storage) -> None:
    """A reclaim can hand a copy to a second instance while the first still runs: the second
    waits for the first's transaction, then finds the id."""
    first, second = storage.processed_messages("risk"), storage.processed_messages("risk")
    inside, release = asyncio.Event(), asyncio.Event()

    async def slow(connection: AsyncConnection) -> None:
        await record(5)(connection)
        inside.set()
        await release.wait()

    running = asyncio.create_task(first.apply(message(5), slow))
    await inside.wait()
    racing = asyncio.create_task(second.apply(message(5), record(5)))
    release.set()
    assert sorted([await running, await racing]) == [False, True]
    assert await committed(storage) == [(5, "risk")]


async def test_each_consumer_applies_a_message_once(storage: Storage) -> None:
    risk, collateral = storage.processed_messages("risk"), storage.processed_messages("collateral")
    assert await risk.apply(message(1), record(1, "risk"))
    assert await collateral.apply(message(1), record(1, "collateral"))
    assert not await collateral.apply(message(1), record(1, "collateral"))
    assert await committed(storage) == [(1, "collateral"), (1, "risk")]


async def test_forget_drops_only_this_consumers_ids_older_than_the_cut(storage: Storage) -> None:
    risk, collateral = storage.processed_messages("risk"), storage.processed_messages("collateral")
    for n, ts_ns in ((1, 100), (2, 200), (3, 300)):
        await risk.apply(message(n, ts_ns), record(n))
    await collateral.apply(message(1, 100), record(1, "collateral"))
    assert await risk.forget(before_ns=300) == 2
    assert [await risk.handled(f"msg-000{n}") for n in (1, 2, 3)] == [False, False, True]
    assert await collateral.handled("msg-0001") is True
    async with storage.database.engine.connect() as connection:
        total = (await connection.execute(select(func.count()).select_from(effects))).scalar()
    assert total == 4  # forgetting ids never touches effects


async def test_a_consumer_must_be_named(storage: Storage) -> None:
    with pytest.raises(ValueError, match="consumer must name"):
        ProcessedMessages(storage.database, "")
