"""A subscribing engine in its own OS process, for the fault tests.

    python -m tests.faults.engine ENGINE URL PREFIX INSTANCE RECORD HTTP_PORT [--delay S]

It subscribes ``strategy.signals.*``, serves ``POST /v1/messages`` on 127.0.0.1:HTTP_PORT
(registered, so publishers reach it while Redis is down), prints ``ready``, and works until
SIGTERM. Each handled message's ``n`` is appended to RECORD with one unbuffered write, so
the file tells what was handled, and how often, even after a kill -9 or with Redis down.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from fastapi import FastAPI

from starmesh import Message, create_messagebus_client
from starmesh.marketdata.http import serve
from tests.faults.settings import fault_settings


async def main(args: argparse.Namespace) -> None:
    settings = fault_settings(args.prefix)
    client = create_messagebus_client(
        args.engine, args.http_port, url=args.url, instance=args.instance, settings=settings
    )
    record = os.open(args.record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    async def handle(message: Message) -> None:
        os.write(record, b"%d\n" % message.payload["n"])
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
    os.close(record)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("engine", "url", "prefix", "instance", "record"):
        parser.add_argument(name)
    parser.add_argument("http_port", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    asyncio.run(main(parser.parse_args()))
