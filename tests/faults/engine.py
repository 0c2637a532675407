"""A subscribing engine in its own OS process, for the fault tests.

    python -m tests.faults.engine ENGINE URL PREFIX INSTANCE RECORD HTTP_PORT [--delay S]
        [--once] [--die-after N]

It subscribes ``strategy.signals.*``, serves ``POST /v1/messages`` on 127.0.0.1:HTTP_PORT
(registered, so publishers reach it while Redis is down), prints ``ready``, and works until
SIGTERM. Each handled message's ``n`` is appended to RECORD with one unbuffered write, so
the file tells what was handled, and how often, even after a kill -9 or with Redis down.

``--once``: RECORD is a SQLite ledger instead, and ``n`` goes into its ``handled`` table in
the transaction that records the message as processed (:class:`ProcessedMessages`).
``--die-after N``: the process kills itself (SIGKILL) once message N is handled, before the
bus can acknowledge it: the gap a crash leaves. Only once: a marker file remembers it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from starmesh import Message, create_messagebus_client
from starmesh.marketdata.http import serve
from starmesh.storage import Storage
from tests.faults.settings import fault_settings

Record = Callable[[Message], Awaitable[bool]]


def append_to_file(path: str) -> Record:
    record = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    async def append(message: Message) -> bool:
        os.write(record, b"%d\n" % message.payload["n"])
        return True

    return append


async def commit_once(storage: Storage) -> Record:
    async with storage.database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS handled (n INTEGER)"))
    processed = storage.processed_messages("fault-engine")

    async def commit(message: Message) -> bool:
        async def effect(connection: AsyncConnection) -> None:
            await connection.execute(
                text("INSERT INTO handled (n) VALUES (:n)"), {"n": message.payload["n"]}
            )

        return await processed.apply(message, effect)

    return commit


async def main(args: argparse.Namespace) -> None:
    settings = fault_settings(args.prefix)
    client = create_messagebus_client(
        args.engine, args.http_port, url=args.url, instance=args.instance, settings=settings
    )
    storage = await Storage.open(f"sqlite+aiosqlite:///{args.record}") if args.once else None
    record = await commit_once(storage) if storage else append_to_file(args.record)
    died = f"{args.record}.died"

    async def handle(message: Message) -> None:
        recorded = await record(message)
        if recorded and message.payload["n"] == args.die_after:
            with contextlib.suppress(FileExistsError):  # it died once already: live on
                os.close(os.open(died, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
                os.kill(os.getpid(), signal.SIGKILL)
        if args.delay:
            await asyncio.sleep(args.delay)

    await client.subscribe("strategy.signals.*", handle)
    app = FastAPI()
    app.include_router(client.http_router())
    server, serving = await serve(app, "127.0.0.1", args.http_port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with client:
        print("ready", flush=True)
        await stop.wait()
    server.should_exit = True
    await serving
    if storage is not None:
        await storage.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("engine", "url", "prefix", "instance", "record"):
        parser.add_argument(name)
    parser.add_argument("http_port", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--die-after", type=int, default=None)
    asyncio.run(main(parser.parse_args()))
