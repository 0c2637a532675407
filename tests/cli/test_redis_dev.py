"""``starmesh redis start|stop``: two local servers, the Engine Logic Bus with AOF always."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import redis
from typer.testing import CliRunner

from starmesh.cli.app import app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_start_two_servers_then_stop_them(tmp_path: Path) -> None:
    ports = ["--marketdata-port", str(free_port()), "--logic-port", str(free_port())]
    where = ["--directory", str(tmp_path)]
    runner = CliRunner()
    started = runner.invoke(app, ["redis", "start", *where, *ports])
    assert started.exit_code == 0, started.output
    md_port, logic_port = int(ports[1]), int(ports[3])
    try:
        assert f"export STARMESH_BUS_URL=redis://127.0.0.1:{logic_port}" in started.output
        marketdata = redis.Redis(port=md_port, decode_responses=True)
        logic = redis.Redis(port=logic_port, decode_responses=True)
        assert marketdata.config_get("appendonly") == {"appendonly": "no"}
        assert logic.config_get("appendonly") == {"appendonly": "yes"}
        assert logic.config_get("appendfsync") == {"appendfsync": "always"}
        again = runner.invoke(app, ["redis", "start", *where, *ports])
        assert f"something already answers on {logic_port}" in again.output
        pids = [int((tmp_path / f"{name}.pid").read_text()) for name in ("marketdata", "logic")]
    finally:
        stopped = runner.invoke(app, ["redis", "stop", *where, *ports])
    assert stopped.exit_code == 0, stopped.output
    assert stopped.output.count("stopped") == 2
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"redis-server {pid} still runs")
    assert "not started here" in runner.invoke(app, ["redis", "stop", *where, *ports]).output
