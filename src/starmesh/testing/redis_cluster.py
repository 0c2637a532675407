"""A private Redis Cluster: masters and their replicas, each a ``redis-server
--cluster-enabled yes`` on free ports, joined by ``redis-cli --cluster create``.

Tests fail a master over to its replica (``CLUSTER FAILOVER`` on the replica, the coordinated
way) or kill it (the replica takes over once the others agree it is gone, after
``node_timeout_ms``). Blocking calls: from async code, run them in a thread.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import NamedTuple, Self

from starmesh.testing.redis_server import RedisServer, redis_binary

__all__ = ["ClusterNodeInfo", "LocalRedisCluster"]

_HASH_SLOTS = 16_384


class ClusterNodeInfo(NamedTuple):
    """One line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    role: str
    """``master`` or ``slave``."""
    master_id: str | None
    failed: bool
    slots: list[tuple[int, int]]


class LocalRedisCluster:
    def __init__(
        self,
        masters: int = 3,
        replicas: int = 1,
        *,
        node_timeout_ms: int = 1_000,
        binary: str | None = None,
    ) -> None:
        self.binary = binary or redis_binary()
        self.cli = shutil.which("redis-cli", path=str(Path(self.binary).parent)) or shutil.which(
            "redis-cli"
        )
        if self.cli is None:
            raise RuntimeError("redis-cli is not installed: it creates the test cluster")
        self.node_timeout_ms = node_timeout_ms
        self.servers = [self._server() for _ in range(masters * (1 + replicas))]
        self.replicas = replicas

    def _server(self) -> RedisServer:
        return RedisServer(
            self.binary,
            args=[
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                # A replica that lost its master for a while may still take over: tests
                # fail masters over on purpose, and want it to happen.
                "--cluster-replica-validity-factor", "0",
                # Start a replica's first sync at once (the default waits 5 s for more
                # replicas): until it is done, the replica has nothing to take over with.
                "--repl-diskless-sync-delay", "0",
            ],
            cluster_bus=True,  # its port chosen at each start attempt, beside the node's
        )  # fmt: skip

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming one live node (the cluster is discovered from it)."""
        return f"redis+cluster://127.0.0.1:{self.live_ports()[0]}"

    def live_ports(self) -> list[int]:
        return [s.port for s in self.servers if s.pid is not None]

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def start(self) -> Self:
        try:
            for server in self.servers:
                server.start()
            self._cli(
                "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
                "--cluster-replicas", str(self.replicas), "--cluster-yes",
                timeout=60,
            )  # fmt: skip
            self.wait_until_ok(expect_nodes=len(self.servers))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    # --- looking ---------------------------------------------------------------------------

    def nodes(self, port: int | None = None) -> list[ClusterNodeInfo]:
        """What one node (default: the first live one) says of the cluster."""
        text = self._cli("-p", str(port or self.live_ports()[0]), "CLUSTER", "NODES")
        nodes = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            flags = fields[2].split(",")
            slots = []
            for item in fields[8:]:
                if item.startswith("["):
                    continue  # a slot being migrated
                low, _, high = item.partition("-")
                slots.append((int(low), int(high or low)))
            nodes.append(
                ClusterNodeInfo(
                    node_id=fields[0],
                    port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                    role="master" if "master" in flags else "slave",
                    master_id=None if fields[3] == "-" else fields[3],
                    failed="fail" in flags or "fail?" in flags,
                    slots=slots,
                )
            )
        return nodes

    def masters(self) -> list[ClusterNodeInfo]:
        return sorted(
            (n for n in self.nodes() if n.role == "master" and n.slots and not n.failed),
            key=lambda n: n.port,
        )

    def replica_of(self, master_port: int, timeout: float = 10.0) -> int:
        """The port of a replica ``master_port`` streams to now. Asked of the master itself:
        another node learns who replicates whom by gossip, and may not know it yet."""
        deadline = time.monotonic() + timeout
        while True:
            info = self._info(master_port, "INFO", "replication")
            for key, value in info.items():
                if key.startswith("slave") and key[5:].isdigit():
                    fields = dict(item.split("=", 1) for item in value.split(",") if "=" in item)
                    if fields.get("state") == "online":
                        return int(fields["port"])
            if time.monotonic() > deadline:
                raise RuntimeError(f"127.0.0.1:{master_port} has no replica online: {info}")
            time.sleep(0.05)

    def master_port_of(self, key: str) -> int:
        """The port of the master serving ``key`` now."""
        slot = int(self._cli("-p", str(self.live_ports()[0]), "CLUSTER", "KEYSLOT", key))
        for node in self.masters():
            if any(low <= slot <= high for low, high in node.slots):
                return node.port
        raise RuntimeError(f"no master serves slot {slot}")

    def wait_until_ok(self, expect_nodes: int | None = None, timeout: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok`` with every slot served (and knows
        ``expect_nodes`` nodes), and every live replica is in sync with its master."""
        deadline = time.monotonic() + timeout
        while True:
            states = [self._info(port, "CLUSTER", "INFO") for port in self.live_ports()]
            if all(
                info.get("cluster_state") == "ok"
                and info.get("cluster_slots_ok") == str(_HASH_SLOTS)
                and (expect_nodes is None or info.get("cluster_known_nodes") == str(expect_nodes))
                for info in states
            ) and all(self._in_sync(port) for port in self.live_ports()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster is not ok after {timeout} s: {states}")
            time.sleep(0.05)

    # --- faults ----------------------------------------------------------------------------

    def failover(self, replica_port: int, timeout: float = 30.0) -> None:
        """``CLUSTER FAILOVER`` on ``replica_port``: its master stops taking writes, the
        replica catches up with it, then takes over; returns once it is the master."""
        self._cli("-p", str(replica_port), "CLUSTER", "FAILOVER")
        self._wait_master(replica_port, timeout)

    def kill(self, port: int) -> None:
        """SIGKILL one node: what its replica has not received yet is lost with it."""
        self.server(port).kill()

    def wait_promoted(self, replica_port: int, timeout: float = 30.0) -> None:
        self._wait_master(replica_port, timeout)

    def _wait_master(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._cli("-p", str(port), "ROLE").split()[0] != "master":
            if time.monotonic() > deadline:
                raise RuntimeError(f"127.0.0.1:{port} did not become a master in {timeout} s")
            time.sleep(0.02)
        self.wait_until_ok(timeout=max(1.0, deadline - time.monotonic()))

    def _in_sync(self, port: int) -> bool:
        info = self._info(port, "INFO", "replication")
        if info.get("role") != "slave":
            return True
        return info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == "0"

    def _info(self, port: int, *command: str) -> dict[str, str]:
        text = self._cli("-p", str(port), *command)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def _cli(self, *args: str, timeout: float = 10.0) -> str:
        assert self.cli is not None
        done = subprocess.run(
            [self.cli, "-h", "127.0.0.1", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0 or done.stdout.startswith(("ERR", "(error)")):
            raise RuntimeError(f"redis-cli {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout.strip()
