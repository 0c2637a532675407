"""Starting worker processes and reading what they recorded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from starmesh.bus.redis.replies import as_bytes

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A test's child process that prints ``ready`` once it works; killed or stopped at will."""

    instance: str
    process: subprocess.Popen[str]

    async def ready(self, timeout: float = 30.0) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), timeout)
        if line.strip() != "ready":
            _, err = self.process.communicate(timeout=10)
            raise AssertionError(f"{self.instance} did not start: {line!r}\n{err}")

    def kill(self) -> None:
        """kill -9: no goodbye, its fetched messages stay pending in Redis."""
        self.process.kill()
        self.process.communicate(timeout=10)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
        return err


class Worker(Process):
    def __init__(self, role: str, url: str, prefix: str, instance: str, *options: str) -> None:
        self.instance = instance
        self.prefix = prefix
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.processes.worker", role, url, prefix, instance, *options],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def handled(self, redis: aioredis.Redis) -> list[str]:
        raw = await redis.lrange(f"{self.prefix}:test:handled:{self.instance}", 0, -1)
        return [as_bytes(item).decode() for item in raw]
