"""Private redis-server processes: started on a free port (and a Unix socket), stopped or
killed at will.

Tests and benchmarks never touch a Redis they did not start. The binary comes from
``STARMESH_TEST_REDIS_SERVER`` or ``PATH`` (``make test`` installs it when missing); without
it the Redis tests fail with the reason, they are not skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

__all__ = ["RedisServer", "TlsFiles", "free_port", "redis_binary"]

_MIN_MAJOR = 7


def redis_binary() -> str:
    binary = os.environ.get("STARMESH_TEST_REDIS_SERVER") or shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: the Redis tests start their own servers. "
            "Run `make test` (it installs it) or install redis-server >= 7 yourself."
        )
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"v=(\d+)\.", version.stdout)
    if match is None or int(match.group(1)) < _MIN_MAJOR:
        raise RuntimeError(f"{binary} is {version.stdout.strip()}; the tests need >= {_MIN_MAJOR}")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TlsFiles(NamedTuple):
    """A server certificate and key, and the CA that signed it (and the clients' certs)."""

    cert: Path
    key: Path
    ca: Path


class RedisServer:
    """One redis-server on 127.0.0.1 and a port of its own: no persistence, or with ``aof``
    the configuration recommended for the Engine Logic Bus (AOF, ``appendfsync always``), so
    a kill and ``restart`` keeps every write it acknowledged. ``args`` are passed on."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        aof: bool = False,
        tls: TlsFiles | None = None,
        args: Sequence[str] = (),
        cluster_bus: bool = False,
    ) -> None:
        self.binary = binary or redis_binary()
        self.cluster_bus = cluster_bus
        """A cluster node: it also binds a cluster bus port, chosen free with its own."""
        self.cluster_port = 0
        self.aof = aof
        self.tls = tls
        """With TLS files: TLS only (no plain port), client certificates required."""
        self.args = list(args)
        self.port = 0
        self._dir = Path(tempfile.mkdtemp(prefix="starmesh-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """The same server through its Unix socket (a same-host deployment's cheaper path)."""
        return f"unix://{self._dir / 'redis.sock'}?db=0"

    @property
    def pid(self) -> int | None:
        """The running server's process id (None when stopped)."""
        return None if self._process is None else self._process.pid

    def start(self) -> RedisServer:
        for _attempt in range(5):
            self.port = self.port or free_port()
            if self.cluster_bus:
                self.cluster_port = self.cluster_port or free_port()
            if self._launch():
                return self
            # Somebody took a port between probe and bind: take others.
            self.port = self.cluster_port = 0
        raise RuntimeError(f"redis-server did not start; see {self._dir / 'redis.log'}")

    def restart(self) -> None:
        """Start again on the same port after ``kill`` or ``stop``: empty, or with ``aof``
        holding everything it acknowledged before."""
        if not self._launch():
            raise RuntimeError(f"redis-server did not restart on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the way a crashed server goes, connections cut without goodbye."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            self._process = None

    def _launch(self) -> bool:
        self._process = subprocess.Popen(
            [
                self.binary,
                *(("--port", "0", "--tls-port", str(self.port), "--tls-cert-file",
                   str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                   "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "yes")
                  if self.tls else ("--port", str(self.port))),
                "--bind", "127.0.0.1",
                "--save", "",
                *(("--appendonly", "yes", "--appendfsync", "always") if self.aof
                  else ("--appendonly", "no")),
                "--protected-mode", "no",
                "--dir", str(self._dir),
                "--logfile", str(self._dir / "redis.log"),
                "--unixsocket", str(self._dir / "redis.sock"),
                "--unixsocketperm", "700",
                *(("--cluster-port", str(self.cluster_port)) if self.cluster_bus else ()),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if self._answers_ping():
                return True
            time.sleep(0.01)
        self.kill()
        return False

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as connection:
                if self.tls is None:
                    connection.sendall(b"PING\r\n")
                    return connection.recv(16).startswith(b"+PONG")
                context = ssl.create_default_context(cafile=str(self.tls.ca))
                context.load_cert_chain(str(self.tls.cert), str(self.tls.key))
                with context.wrap_socket(connection, server_hostname="127.0.0.1") as secure:
                    secure.sendall(b"PING\r\n")
                    return secure.recv(16).startswith(b"+PONG")
        except OSError:
            return False
