"""A supervisor of engine processes: ``starmesh up``.

Each engine (and the hub) runs as ``python -m starmesh engine <name>``, in a process of its
own with its HTTP port. The supervisor starts them (the hub first), restarts one that dies
with a growing pause (reset once it has stayed up a while), hands every line the processes
print to a callback with the process's name, and on ``stop`` sends each SIGTERM (a clean stop:
what an engine fetched and did not finish stays claimable in Redis) and SIGKILL only to one
still running after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

from starmesh.core.enums import EngineType

__all__ = ["ProcessSpec", "Supervised", "Supervisor", "plan_processes"]

logger = logging.getLogger(__name__)

State = Literal["starting", "running", "restarting", "stopping", "stopped", "failed"]
LineHandler = Callable[[str, str], None]
"""(process name, line) for every line a process prints."""


class ProcessSpec(NamedTuple):
    name: str
    """``strategy``, ``strategy-2``: unique in the deployment, the log prefix."""
    engine: EngineType
    instance: str
    port: int
    argv: tuple[str, ...]


def plan_processes(
    engines: Sequence[EngineType],
    instances: dict[EngineType, int],
    *,
    url: str,
    marketdata_url: str | None = None,
    config_path: str | None = None,
    host: str = "127.0.0.1",
    instance_prefix: str = "up",
    port_offset: int = 0,
) -> list[ProcessSpec]:
    """One process per engine instance, in the order given; ports from each engine's own port
    up (plus ``port_offset``, for a second deployment on one host)."""
    specs = []
    for engine in engines:
        count = instances.get(engine, 1)
        for index in range(1, count + 1):
            name = engine.value if count == 1 else f"{engine.value}-{index}"
            port = engine.default_port + port_offset + index - 1
            instance = f"{instance_prefix}-{engine.value}-{index}"
            argv = [sys.executable, "-m", "starmesh", "engine", engine.value, "--url", url,
                    "--port", str(port), "--host", host, "--instance", instance]  # fmt: skip
            if marketdata_url:
                argv += ["--marketdata-url", marketdata_url]
            if config_path:
                argv += ["--config", config_path]
            specs.append(ProcessSpec(name, engine, instance, port, tuple(argv)))
    return specs


class Supervised:
    """One process under supervision, and what happened to it."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.process: asyncio.subprocess.Process | None = None
        self.state: State = "starting"
        self.restarts = 0
        self.started_at = 0.0
        self.last_exit: int | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at if self.state == "running" else 0.0


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        on_line: LineHandler,
        env: dict[str, str] | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        stable_after_s: float = 30.0,
        grace_s: float = 30.0,
    ) -> None:
        self.children = [Supervised(spec) for spec in specs]
        self._on_line = on_line
        self._env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._stable_after_s = stable_after_s
        self._grace_s = grace_s
        self._stopping = False
        self._pumps: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run every process until ``stop`` is set, then stop them all."""
        watchers = [
            asyncio.create_task(self._watch(child), name=f"supervise:{child.spec.name}")
            for child in self.children
        ]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            await self._terminate_all()
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await asyncio.gather(*self._pumps, return_exceptions=True)  # the last lines

    async def _watch(self, child: Supervised) -> None:
        backoff = self._backoff_s
        while not self._stopping:
            await self._spawn(child)
            assert child.process is not None
            code = await child.process.wait()
            child.last_exit = code
            if self._stopped():  # it was told to stop, not died
                break
            lived = time.monotonic() - child.started_at
            if lived >= self._stable_after_s:
                backoff = self._backoff_s
            child.state = "restarting"
            child.restarts += 1
            self._on_line(child.spec.name, f"exited with {code}; restarting in {backoff:.1f} s")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    def _stopped(self) -> bool:
        return self._stopping

    async def _spawn(self, child: Supervised) -> None:
        child.state = "starting"
        child.process = await asyncio.create_subprocess_exec(
            *child.spec.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the supervisor only
        )
        child.started_at = time.monotonic()
        child.state = "running"
        self._on_line(child.spec.name, f"started (pid {child.process.pid}, port {child.spec.port})")
        pump = asyncio.create_task(self._pump(child, child.process), name=f"log:{child.spec.name}")
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)

    async def _pump(self, child: Supervised, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            self._on_line(child.spec.name, line.decode(errors="replace").rstrip())

    async def _terminate_all(self) -> None:
        running = [c for c in self.children if c.process and c.process.returncode is None]
        for child in running:
            child.state = "stopping"
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for child in running:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), self._grace_s)
            except TimeoutError:
                self._on_line(child.spec.name, f"still running after {self._grace_s:g} s: killed")
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.process.wait()
            child.last_exit = child.process.returncode
            child.state = "stopped" if child.last_exit == 0 else "failed"
