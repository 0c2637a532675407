"""Several hosts: Redis in one network namespace, an engine in another, the test in the root
namespace; every byte crosses a veth link, and the engine's link is cut and restored mid-run.

Needs root and iproute2 (``ip netns``): where namespaces cannot be made the test fails and
says why; it never skips. The addresses are private ones inside namespaces the test creates
and deletes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from starmesh import EngineType, Settings, create_messagebus_client
from starmesh.bus.redis.replies import as_bytes
from starmesh.testing import redis_binary
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
CUT_SECONDS = 13.0
RECOVERY_BOUND_S = 12.0


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


@dataclass
class Hosts:
    tag: str
    redis_ns: str
    engine_ns: str
    redis_from_root: str
    """Redis's address on the link to the root namespace (the test's own)."""
    redis_from_engine: str
    """Redis's address on the link to the engine's namespace."""
    engine_link: str
    """The engine's end of its link: what the test takes down and up."""


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise RuntimeError(
            "this test makes network namespaces: it needs root and iproute2 (`ip netns`)"
        )
    tag = secrets.token_hex(3)
    subnet = int(tag[:2], 16)
    made = Hosts(tag, f"sm-{tag}-redis", f"sm-{tag}-engine", f"10.211.{subnet}.1",
                 f"10.212.{subnet}.1", f"sme{tag}")  # fmt: skip
    namespaces = (made.redis_ns, made.engine_ns)
    try:
        for ns in namespaces:
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        # root <-> redis
        ip("link", "add", f"smr{tag}", "type", "veth", "peer", "name", f"smR{tag}")
        ip("link", "set", f"smR{tag}", "netns", made.redis_ns)
        ip("addr", "add", f"10.211.{subnet}.2/30", "dev", f"smr{tag}")
        ip("link", "set", f"smr{tag}", "up")
        ip("-n", made.redis_ns, "addr", "add", f"{made.redis_from_root}/30", "dev", f"smR{tag}")
        ip("-n", made.redis_ns, "link", "set", f"smR{tag}", "up")
        # engine <-> redis
        ip("link", "add", made.engine_link, "type", "veth", "peer", "name", f"smE{tag}")
        ip("link", "set", made.engine_link, "netns", made.engine_ns)
        ip("link", "set", f"smE{tag}", "netns", made.redis_ns)
        ip("-n", made.engine_ns, "addr", "add", f"10.212.{subnet}.2/30", "dev", made.engine_link)
        ip("-n", made.engine_ns, "link", "set", made.engine_link, "up")
        ip("-n", made.redis_ns, "addr", "add", f"{made.redis_from_engine}/30", "dev", f"smE{tag}")
        ip("-n", made.redis_ns, "link", "set", f"smE{tag}", "up")
        yield made
    finally:
        subprocess.run(["ip", "link", "del", f"smr{tag}"], capture_output=True, check=False)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def in_namespace(ns: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, *argv], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


async def test_no_loss_across_a_network_link_that_is_cut(hosts: Hosts, key_prefix: str) -> None:
    port = 6390
    server = in_namespace(
        hosts.redis_ns, redis_binary(), "--port", str(port), "--bind", hosts.redis_from_root,
        hosts.redis_from_engine, "--save", "", "--appendonly", "no", "--protected-mode", "no",
    )  # fmt: skip
    url_root = f"redis://{hosts.redis_from_root}:{port}/0"
    url_engine = f"redis://{hosts.redis_from_engine}:{port}/0"
    watcher = aioredis.Redis.from_url(url_root)
    consumer: subprocess.Popen[str] | None = None
    try:
        await eventually(_answers(watcher), timeout=20, what="Redis in its namespace")
        consumer = in_namespace(
            hosts.engine_ns, sys.executable, "-m", "tests.processes.worker", "consumer",
            url_engine, key_prefix, "across",
        )  # fmt: skip
        assert consumer.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(consumer.stdout.readline), 60)
        assert line.strip() == "ready", consumer.stderr.read() if consumer.stderr else line
        settings = Settings(key_prefix=key_prefix)
        handled_key = f"{key_prefix}:test:handled:across"

        async def handled() -> list[int]:
            return [int(as_bytes(n)) for n in await watcher.lrange(handled_key, 0, -1)]

        async with create_messagebus_client(
            EngineType.STRATEGY, url=url_root, settings=settings
        ) as strategy:
            for n in range(300):
                await strategy.publish("strategy.signals.buy", {"n": n})

            async def first_batch() -> bool:
                return len(await handled()) == 300

            await eventually(first_batch, timeout=60, what="300 handled across the link")
            ip("-n", hosts.engine_ns, "link", "set", hosts.engine_link, "down")  # the cut
            for n in range(300, 600):
                await strategy.publish("strategy.signals.buy", {"n": n})
            # The fault lasts longer than the transport's dead-connection limit (11 s), so
            # the engine's connections die and are remade rather than merely stalling; what
            # Redis delivered into the cut is pending on the dead consumer and must be
            # claimed back, not lost. A fault's duration, not a wait for something.
            await asyncio.sleep(CUT_SECONDS)
            assert len(await handled()) == 300  # nothing can have crossed a cut link
            ip("-n", hosts.engine_ns, "link", "set", hosts.engine_link, "up")

            async def everything() -> bool:
                return len(set(await handled())) == 600

            # Reconnecting takes at most a couple of backoffs (2 s each). The bound is below
            # what the link's 13 s cut plus a 30 s health-check PING leave (17 s): the only
            # thing that rescued an event loop spinning on a dead pub/sub read (channel.py).
            await eventually(everything, timeout=RECOVERY_BOUND_S, what="all 600 handled")
        assert sorted(await handled()) == list(range(600))  # each once, none lost
    finally:
        await watcher.aclose()
        for process in (consumer, server):
            if process is not None:
                process.terminate()
                try:
                    process.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate(timeout=10)


def _answers(client: aioredis.Redis) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            return bool(await client.ping())
        except (OSError, aioredis.ConnectionError):
            return False

    return check
