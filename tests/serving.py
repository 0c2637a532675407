"""An ASGI app served by uvicorn in the test's event loop, on a free loopback port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from starmesh.marketdata.http import serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def serving(router: APIRouter, port: int) -> AsyncIterator[str]:
    """Serve ``router`` at ``http://127.0.0.1:port`` until the block ends."""
    app = FastAPI()
    app.include_router(router)
    server, task = await serve(app, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
