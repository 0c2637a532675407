"""``starmesh redis start|stop``: the architecture's two Redis servers on this machine, for
development: the MarketData Bus on 6380 and the Engine Logic Bus on 6381, the latter with AOF
and ``appendfsync always`` (a message Redis accepted survives a crash of Redis).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Annotated, NamedTuple

import redis
import typer
from rich.console import Console

__all__ = ["register"]

_WAIT_S = 10.0
Dir = Annotated[Path, typer.Option(help="Where the servers keep their files.")]
MarketdataPort = Annotated[int, typer.Option(help="The MarketData Bus's port.")]
LogicPort = Annotated[int, typer.Option(help="The Engine Logic Bus's port (AOF always).")]


class _Server(NamedTuple):
    name: str
    port: int
    durable: bool

    def directory(self, root: Path) -> Path:
        return root / self.name

    def pidfile(self, root: Path) -> Path:
        return root / f"{self.name}.pid"


def _servers(marketdata_port: int, logic_port: int) -> list[_Server]:
    return [_Server("marketdata", marketdata_port, False), _Server("logic", logic_port, True)]


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def register(app: typer.Typer, console: Console) -> None:
    redis_app = typer.Typer(help="Two local Redis servers for development (6380, 6381).")
    app.add_typer(redis_app, name="redis")

    @redis_app.command("start")
    def start(
        directory: Dir = Path(".starmesh/redis"),
        marketdata_port: MarketdataPort = 6380,
        logic_port: LogicPort = 6381,
    ) -> None:
        """Start both servers (in the background), unless they already answer."""
        binary = shutil.which("redis-server")
        if binary is None:
            console.print("[red]redis-server is not installed[/red]: apt-get install redis-server")
            raise typer.Exit(1)
        for server in _servers(marketdata_port, logic_port):
            if _answers(server.port):
                console.print(f"{server.name}: something already answers on {server.port}")
                continue
            data = server.directory(directory).resolve()
            data.mkdir(parents=True, exist_ok=True)
            durability = (["--appendonly", "yes", "--appendfsync", "always"] if server.durable
                          else ["--appendonly", "no"])  # fmt: skip
            subprocess.run(
                [binary, "--port", str(server.port), "--bind", "127.0.0.1", "--daemonize", "yes",
                 "--pidfile", str(server.pidfile(directory).resolve()), "--dir", str(data),
                 "--logfile", str(data / "redis.log"), "--save", "", *durability],
                check=True,
            )  # fmt: skip
            deadline = time.monotonic() + _WAIT_S
            while not _answers(server.port):
                if time.monotonic() > deadline:
                    console.print(f"[red]{server.name} did not start[/red]: see {data}/redis.log")
                    raise typer.Exit(1)
                time.sleep(0.05)
            console.print(f"{server.name}: redis://127.0.0.1:{server.port} (files in {data})")
        console.print(
            f"export STARMESH_MARKETDATA_URL=redis://127.0.0.1:{marketdata_port}\n"
            f"export STARMESH_BUS_URL=redis://127.0.0.1:{logic_port}"
        )

    @redis_app.command("stop")
    def stop(
        directory: Dir = Path(".starmesh/redis"),
        marketdata_port: MarketdataPort = 6380,
        logic_port: LogicPort = 6381,
    ) -> None:
        """Stop the servers `starmesh redis start` started (their pid files say which)."""
        for server in _servers(marketdata_port, logic_port):
            pidfile = server.pidfile(directory)
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                console.print(f"{server.name}: not started here (no {pidfile})")
                continue
            try:
                os.kill(pid, signal.SIGTERM)  # Redis writes its AOF out and exits
            except ProcessLookupError:
                console.print(f"{server.name}: was not running")
                pidfile.unlink(missing_ok=True)
                continue
            deadline = time.monotonic() + _WAIT_S
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            pidfile.unlink(missing_ok=True)
            console.print(f"{server.name}: stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
