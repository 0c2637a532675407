"""``starmesh run`` and ``starmesh engine``, run as a user runs them."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from starmesh.cli.app import app
from starmesh.cli.live import run_platform
from starmesh.platform.config import PlatformConfig
from starmesh.platform.routes import ALL_ROUTES, missing_routes
from starmesh.testing import RedisServer

STARMESH = [sys.executable, "-m", "starmesh"]


def flat(output: str) -> str:
    """Rich's output on one line, without its box drawing."""
    return " ".join(output.replace("│", " ").split())


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STARMESH, "run", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_twenty_seconds_of_the_default_platform_carry_every_route(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = run("--duration", "20", "--report", str(report_path), "--dashboard-port", "0")
    assert result.returncode == 0, result.stderr
    assert "on the embedded bus (in-process), 20 symbols" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "in/out" in line]
    assert len(lines) >= 15  # a line a second while it runs
    report = json.loads(report_path.read_text())
    assert missing_routes(report["routes"], ALL_ROUTES) == []
    for route in report["routes"]:
        assert route["messages"] > 0
        assert 0 < route["p50_us"] <= route["p99_us"] <= route["max_us"]
    assert set(report["engines"]) == {
        "risk", "collateral", "vpin", "portfolio", "strategy",
        "features", "ml", "factor", "toraniko", "analytics", "websocket",
    }  # fmt: skip
    assert "dashboard: http://127.0.0.1:" in result.stdout
    assert {engine["state"] for engine in report["engines"].values()} == {"up"}
    assert report["transport"] == "embedded bus (in-process)"
    assert report["quotes_per_second"]["target"] == 1_000
    assert report["quotes_per_second"]["achieved"] > 0
    assert report["hub"]["distributed"]["quote"] > 0
    assert report["process"]["max_rss_mb"] > 0


def test_the_flash_crash_scenario_reports_the_halt(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = run("--duration", "7", "--symbols", "5", "--rate", "250", "--no-dashboard",
                 "--scenario", "flash-crash", "--report", str(report_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(report_path.read_text())["flash_crash"]
    assert outcome["detected"] is True
    assert outcome["symbol"] == "AAPL"
    assert outcome["halt_latency_us"] > 0
    assert outcome["signals_while_halted"] == 0
    assert outcome["buy_signals_before_clearance"] == 0


def test_a_replay_run_trades_the_index_history(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = run("--source", "replay", "--duration", "4", "--no-dashboard", "--no-ledger",
                 "--report", str(report_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["source"] == "replay"
    assert report["symbols"] == 2  # the S&P 500 and the NASDAQ Composite
    assert report["hub"]["distributed"]["quote"] > 0
    states = {name: engine["state"] for name, engine in report["engines"].items()}
    for name in ("risk", "collateral", "vpin", "portfolio", "strategy", "features", "ml"):
        assert states[name] == "up", (name, report["engines"][name])
    # A replay starts at its first day: Factor has no history yet, and says so.
    factor = report["engines"]["factor"]
    assert factor["state"] == "degraded"
    assert "no daily history" in factor["detail"]["warming_up"]


async def test_a_run_s_status_lines_are_plain_even_on_a_terminal() -> None:
    """Each is printed on the engines' event loop: rich's highlighter would cost that loop
    0.75 ms a line (and colour the numbers)."""
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=300)
    await run_platform(PlatformConfig(symbols=("AAPL",)), duration=1.5, console=console)
    lines = [line for line in output.getvalue().splitlines() if " in/out " in line]
    assert lines, output.getvalue()
    assert all("\x1b[" not in line for line in lines), lines


def test_ctrl_c_stops_cleanly() -> None:
    with subprocess.Popen(
        [*STARMESH, "run", "--dashboard-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        assert process.stdout is not None
        try:
            assert "starmesh run:" in process.stdout.readline()
            assert "dashboard: http://127.0.0.1:" in process.stdout.readline()
            assert "in/out" in process.stdout.readline()  # the engines are running
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "Ctrl-C stops cleanly" in out  # the final view was printed after a clean stop


def test_run_over_redis_says_so(redis_server: RedisServer, key_prefix: str) -> None:
    result = subprocess.run(
        [*STARMESH, "run", "--duration", "2", "--symbols", "3", "--rate", "100",
         "--url", redis_server.url, "--no-dashboard"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "STARMESH_KEY_PREFIX": key_prefix},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"on the Redis {redis_server.url}" in result.stdout
    assert "embedded" not in result.stdout
    assert "(asked 100)" in result.stdout  # the final view: the rate achieved beside it


def test_run_help_says_when_it_is_not_embedded() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "100"})
    assert "unless --url or STARMESH_BUS_URL names a Redis" in flat(result.output)
    assert "quote rate achieved" in flat(result.output)
    assert "Event loop: asyncio or uvloop." in flat(result.output)  # not "all": one loop runs


def test_bad_run_options_are_usage_errors() -> None:
    runner = CliRunner()
    for args, message in (
        (["run", "--source", "bloomberg"], "must be simulated or replay"),
        (["run", "--scenario", "meteor"], "the one scenario is flash-crash"),
        (["run", "--symbols", "5000"], "the simulated universe has 100 symbols"),
        (["run", "--loop", "all"], "loop must be one of asyncio, uvloop"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert message in flat(result.output), (args, result.output)


def test_engine_needs_a_known_name_and_a_server_bus(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["engine", "trader", "--url", "redis://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "unknown engine 'trader'" in flat(result.output)
    result = runner.invoke(app, ["engine", "risk"], env={"STARMESH_BUS_URL": ""})
    assert result.exit_code == 2
    assert "an engine alone needs a server bus" in flat(result.output)
    bad = tmp_path / "bad.json"
    bad.write_text('{"symbols": []}')
    result = runner.invoke(app, ["engine", "risk", "--url", "redis://127.0.0.1:9",
                                 "--config", str(bad)])  # fmt: skip
    assert result.exit_code == 2
    assert "the platform needs at least one symbol" in flat(result.output)
