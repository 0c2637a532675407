"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from starmesh import __version__
from starmesh.cli.app import app

STARMESH = [sys.executable, "-m", "starmesh"]


def test_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"starmesh {__version__}"


def test_bench_memory_writes_json_with_the_baseline_beside(tmp_path: Path) -> None:
    output = tmp_path / "memory.json"
    result = CliRunner().invoke(
        app,
        ["bench", "memory", "--messages", "2000", "--rate", "5000", "--seconds", "0.3",
         "--repeats", "1", "--loop", "asyncio", "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert report["bench"] == "memory"
    assert report["machine"]["cpus"] >= 1
    run = report["results"]["asyncio"]
    for side in ("starmesh", "baseline_asyncio_queue"):
        assert run["throughput"][side]["median_msgs_per_s"] > 0
        latency = run["latency"][side]
        assert latency["samples"] == 1500
        assert 0 < latency["p50_us"] <= latency["p99_us"] <= latency["max_us"]
    assert run["throughput"]["starmesh_over_baseline"] > 0
    assert set(run["targets_met"]) == {"throughput", "latency_p50", "latency_p99"}


def test_bench_hub_sweeps_depths_and_reports_cpu_per_request(tmp_path: Path) -> None:
    output = tmp_path / "hub.json"
    result = CliRunner().invoke(
        app,
        ["bench", "hub", "--seconds", "0.5", "--inflight", "1", "--inflight", "3",
         "--calls", "1000", "--zipf-seconds", "1", "--loop", "asyncio", "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    points = report["results"]["asyncio"]["over_redis"]["points"]
    assert [p["inflight_per_client"] for p in points] == [1, 3]
    for point in points:
        for side in ("starmesh", "starmesh_via_hub", "baseline_redis_py"):
            figures = point[side]
            assert figures["requests"] > 0
            cpu = figures["cpu_us_per_request"]
            assert set(cpu) == {"clients", "server", "redis", "total"}
            assert cpu["clients"] > 0
            assert cpu["total"] == pytest.approx(sum(v for k, v in cpu.items() if k != "total"))
        # Through a server, the server works; the default mostly reads the snapshot keys.
        assert point["starmesh_via_hub"]["cpu_us_per_request"]["server"] > 0
        assert point["baseline_redis_py"]["cpu_us_per_request"]["server"] > 0
    best = report["results"]["best"]
    assert best["redis_cores_for_target_rate"] > 0
    assert "redis_p99_at_that_rate" in report["results"]["targets_met"]


def test_bench_hub_rejects_a_depth_below_one() -> None:
    result = CliRunner().invoke(app, ["bench", "hub", "--inflight", "0"])
    assert result.exit_code == 2
    assert "at least 1" in result.output


def test_unknown_loop_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["run", "--loop", "trio"])
    assert result.exit_code == 2
    assert "loop must be one of" in result.output


def test_hub_runs_as_its_own_process_and_status_reports_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hub = subprocess.Popen(
        [*STARMESH, "hub", "--port", str(port), "--sources", "simulated"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert hub.stdout is not None
    try:
        assert "MarketData Hub up with simulated" in hub.stdout.readline()
        status = subprocess.run(
            [*STARMESH, "status", "--hub-url", f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert f"MarketData Hub at http://127.0.0.1:{port}: ok" in status.stdout
        assert "simulated" in status.stdout
        assert "route bus · outbox 0 · dead letters 0" in status.stdout
        hub.send_signal(signal.SIGTERM)
        out, err = hub.communicate(timeout=30)
    finally:
        hub.kill()
    assert hub.returncode == 0, err
    assert "MarketData Hub stopped" in out


def test_status_says_when_the_hub_is_not_there() -> None:
    result = CliRunner().invoke(app, ["status", "--hub-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "hub not reachable at http://127.0.0.1:9" in result.output
