"""``starmesh up`` and ``starmesh status --url``: engines as supervised processes over Redis."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from starmesh.cli.platform_status import gather_status
from starmesh.core.config import Settings
from starmesh.core.enums import EngineType
from starmesh.platform.supervisor import plan_processes
from starmesh.testing import RedisServer
from tests.helpers import eventually
from tests.platform.test_platform_redis import BUSY

ENGINES = "risk,strategy,portfolio"
PORTS = [EngineType.MARKETDATA.default_port, EngineType.RISK.default_port,
         EngineType.STRATEGY.default_port, EngineType.STRATEGY.default_port + 1,
         EngineType.PORTFOLIO.default_port]  # fmt: skip


def test_a_plan_has_a_process_per_instance_each_on_its_port() -> None:
    specs = plan_processes(
        [EngineType.MARKETDATA, EngineType.STRATEGY], {EngineType.STRATEGY: 2},
        url="redis://127.0.0.1:6381", config_path="p.json", port_offset=100,
    )  # fmt: skip
    assert [(s.name, s.port, s.instance) for s in specs] == [
        ("marketdata", 8900, "up-marketdata-1"),
        ("strategy-1", 8800, "up-strategy-1"),
        ("strategy-2", 8801, "up-strategy-2"),
    ]
    argv = specs[1].argv
    assert argv[1:5] == ("-m", "starmesh", "engine", "strategy")
    assert argv[argv.index("--instance") + 1] == "up-strategy-1"
    assert argv[argv.index("--config") + 1] == "p.json"


def free_offset() -> int:
    """An offset at which every port the deployment needs is free now, and stays so: below the
    ephemeral range (32768 up), where a client connection of another process could take one
    of them before the engine binds it (seen: an engine that never came up)."""
    for _ in range(50):
        offset = random.randrange(10_000, 22_000)  # ports 18,200-30,900
        try:
            for port in PORTS:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free ports for the deployment")


class Lines:
    """A process's output lines, read in a thread, waited for by pattern."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip())

    def find(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in list(self.lines) if (m := re.search(pattern, line))]


@pytest.fixture
def supervisor(
    redis_server: RedisServer, key_prefix: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Lines, int]]:
    config = tmp_path / "platform.json"
    config.write_bytes(msgspec.json.encode(BUSY))
    offset = free_offset()
    process = subprocess.Popen(
        [sys.executable, "-m", "starmesh", "up", "--url", redis_server.url, "--engines", ENGINES,
         "--instances", "strategy=2", "--config", str(config), "--port-offset", str(offset)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "STARMESH_KEY_PREFIX": key_prefix},
    )  # fmt: skip
    try:
        yield process, Lines(process), offset
    finally:
        if process.poll() is None:
            process.terminate()  # it stops its engines: a kill would leave them running
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


async def test_up_supervises_restarts_and_stops_cleanly(
    supervisor: tuple[subprocess.Popen[str], Lines, int], redis_server: RedisServer,
    key_prefix: str,
) -> None:  # fmt: skip
    process, lines, offset = supervisor
    settings = Settings(key_prefix=key_prefix)

    async def everyone_up() -> bool:
        status = await gather_status(redis_server.url, settings)
        engines = status["engines"]
        return (
            set(engines) == {"marketdata", "risk", "strategy", "portfolio"}
            and all(e["state"] == "up" for e in engines.values())
            and engines["strategy"]["instances"] == 2
        )

    await eventually(everyone_up, timeout=90, what="the hub and four engine processes up")
    status = await gather_status(redis_server.url, settings)
    assert status["engines"]["risk"]["http_port"] == EngineType.RISK.default_port + offset
    assert status["paths"]["bus"] == "up"
    # A process that dies is started again, under the same instance name.
    (started,) = lines.find(r"strategy-1 \| started \(pid (\d+)")
    os.kill(int(started.group(1)), signal.SIGKILL)
    await eventually(lambda: bool(lines.find(r"strategy-1 \| exited with -9; restarting")),
                     timeout=30, what="the restart")  # fmt: skip
    await eventually(lambda: len(lines.find(r"strategy-1 \| started")) == 2, timeout=30,
                     what="strategy-1 started again")  # fmt: skip
    await eventually(everyone_up, timeout=60, what="everyone up again")
    detail = (await gather_status(redis_server.url, settings))["engines"]["strategy"]["detail"]
    assert sorted(d["instance"] for d in detail) == ["up-strategy-1", "up-strategy-2"]
    # SIGTERM stops every process cleanly.
    process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(process.wait, 60)
    assert code == 0, "\n".join(lines.lines[-30:])
    assert not lines.find("Traceback")
    assert len(lines.find(r"│ \S+\s+│ stopped │")) == 5


def test_status_as_json_names_engines_in_lower_case(redis_server: RedisServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "starmesh", "status", "--url", redis_server.url, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "STARMESH_KEY_PREFIX": "nobody-here"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"engines": {}, "paths": {}}
