"""A handler's effects committed once per message, over a bus that delivers at least once.

Redis Streams deliver at least once. An instance killed (``kill -9``, power) after its
handler finished but before the acknowledgement reached Redis gets the message again when it
restarts, and the duplicate filter it kept in memory died with it. No transport can close
that gap for an arbitrary handler: "handled" and "acknowledged" live in two systems that
cannot commit together.

What closes it is the idempotent consumer: the handler writes its effects in a database
transaction that also records the message's id. Either both commit or neither does; a copy
whose id is recorded is skipped. A copy that arrives while the first is still running waits
on the row lock and is skipped once the first commits (handled if the first rolled back).

    processed = ProcessedMessages(storage.database, consumer="risk")

    async def on_fill(message: Message) -> None:
        async def effect(connection: AsyncConnection) -> None:
            await connection.execute(exposures.insert(), {...})

        await processed.apply(message, effect)

The ids are kept until :meth:`ProcessedMessages.forget` drops those older than a redelivery
can be: the inbox streams' retention, or the age at which the DLQ takes a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from starmesh.core.message import Message
from starmesh.storage.database import Database
from starmesh.storage.schema import processed_messages

__all__ = ["Effect", "ProcessedMessages"]

Effect = Callable[[AsyncConnection], Awaitable[None]]
"""What a handler changes, written on the connection of the transaction that records the id."""


class ProcessedMessages:
    """The ids of the messages ``consumer`` has handled, in ``database``.

    ``consumer`` names who handles (an engine type, or one of its handlers): two consumers
    handle the same message independently, each once.
    """

    def __init__(self, database: Database, consumer: str) -> None:
        if not consumer:
            raise ValueError("consumer must name who handles the messages")
        self.database = database
        self.consumer = consumer
        self.applied = 0
        self.skipped = 0
        """Copies that arrived after their message's effects were committed."""

    async def apply(self, message: Message, effect: Effect) -> bool:
        """Run ``effect`` and record ``message`` as handled, in one transaction; False, and
        ``effect`` not run, when it was handled already. An exception from ``effect`` rolls
        both back and propagates, so the bus retries the message (then dead-letters it)."""
        record = self.database.insert(processed_messages)
        row = {"consumer": self.consumer, "message_id": message.id, "ts_ns": message.ts_publish}
        async with self.database.engine.begin() as connection:
            if not (await connection.execute(record, row)).all():
                self.skipped += 1
                return False
            await effect(connection)
        self.applied += 1
        return True

    async def handled(self, message_id: str) -> bool:
        """Whether the effects of ``message_id`` are committed."""
        query = select(func.count()).where(
            processed_messages.c.consumer == self.consumer,
            processed_messages.c.message_id == message_id,
        )
        async with self.database.engine.connect() as connection:
            return bool((await connection.execute(query)).scalar_one())

    async def forget(self, before_ns: int) -> int:
        """Drop the ids of messages sent before ``before_ns``; how many. Only for messages
        that can no longer come again: a copy older than that would be handled twice."""
        statement = delete(processed_messages).where(
            processed_messages.c.consumer == self.consumer,
            processed_messages.c.ts_ns < before_ns,
        )
        async with self.database.engine.begin() as connection:
            return (await connection.execute(statement)).rowcount

    def __repr__(self) -> str:
        return f"ProcessedMessages({self.database.shown!r}, consumer={self.consumer!r})"
