"""A TCP proxy on loopback that the test controls: the network between engines and Redis.

Modes: ``heal`` (forward), ``delay`` (forward each chunk late), ``blackhole`` (half-open: the
connections stay up at both ends, nothing passes, as when a link or a NAT silently dies), and
``drop`` (every connection reset, new ones refused at once). Healing a blackhole closes the
connections it held, as the expired NAT entry would.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self._delay = 0.0
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def blackhole(self) -> None:
        self._flowing.clear()

    def drop(self) -> None:
        self._refusing = True
        self._cut_all()

    def heal(self) -> None:
        if not self._flowing.is_set():
            self._cut_all()  # what was held is gone, as with an expired NAT entry
        self._refusing = False
        self._delay = 0.0
        self._flowing.set()

    def _cut_all(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65_536):
                await self._flowing.wait()  # a blackhole holds the bytes back
                if self._delay:
                    await asyncio.sleep(self._delay)
                if sink.transport.is_closing():
                    break
                sink.write(data)
                await sink.drain()
        sink.transport.abort()
        self._links.discard(sink)
