"""What `starmesh bench` shows and writes: tables that fit 80 columns, JSON, a valid PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from starmesh.bench.goals import peer_goals
from starmesh.bench.tables import suite_tables, to_markdown, to_rich
from starmesh.cli.app import app

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _render(tables: list[Any], width: int = 80) -> str:
    console = Console(width=width, record=True, force_terminal=False)
    for table in tables:
        console.print(to_rich(table))
    return console.export_text()


def _latency(p50: float) -> dict[str, Any]:
    return {"samples": 10, "p50_us": p50, "p90_us": p50 * 2, "p99_us": p50 * 3,
            "p999_us": p50 * 4, "max_us": p50 * 5, "mean_us": p50,
            "cdf_us": [p50 * (1 + i / 50) for i in range(101)]}  # fmt: skip


def _peer_results() -> dict[str, Any]:
    ratio = {"median": 0.61, "low": 0.52, "high": 0.7}
    scenarios = {
        name: {
            "patterns": 50, "handlers_per_publish": 5, "messages": 1000,
            "nautilus": {"median_publishes_per_s": 680_000, "latency": _latency(1.2)},
            "starmesh": {"median_publishes_per_s": 412_345, "latency": _latency(12.5)},
            "starmesh_over_nautilus": ratio,
        }
        for name in ("subs1", "subs5", "subs20", "patterns50")
    }  # fmt: skip
    systems = {
        name: {"throughput": {"median_msgs_per_s": 123_456, "lost": 0, "zero_loss": True},
               "latency": _latency(180.0)}
        for name in ("starmesh", "faststream", "redis_py_pipelined", "redis_py", "pubsub")
    }  # fmt: skip
    over = {name: {"throughput": ratio, "p50": ratio, "p99": ratio} for name in systems}
    return {
        "inprocess": {"nautilus_trader": "1.221.0", "scenarios": scenarios},
        "redis": {"redis": "7.0.15", "rate_msgs_per_s": 2000, "systems": systems,
                  "starmesh_over": over},
    }  # fmt: skip


def test_peer_tables_fit_80_columns_without_cutting_a_cell() -> None:
    text = _render(suite_tables("peers", _peer_results()))
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "412,345" in text
    assert "0.61 (0.52-0.70)" in text
    assert "faststream" in text


def test_the_markdown_holds_the_same_figures() -> None:
    markdown = "".join(to_markdown(t) for t in suite_tables("peers", _peer_results()))
    assert "| 5 | starmesh | 412,345 |" in markdown
    assert "| faststream | 123,456 | 0 |" in markdown


def test_goals_say_whether_each_ratio_meets_its_mark() -> None:
    goals = peer_goals(_peer_results())
    assert goals["in process, subs5: starmesh / Nautilus publishes/s"]["met"] is True
    assert goals["Redis: starmesh / FastStream sustained msg/s"]["met"] is False  # 0.61 < 20
    assert goals["Redis: starmesh / FastStream p99 at the paced rate"]["met"] is False
    assert goals["Redis: starmesh lost nothing"]["met"] is True


def test_bench_memory_prints_80_columns_and_writes_json_and_png(tmp_path: Path) -> None:
    output = tmp_path / "memory.json"
    result = CliRunner().invoke(
        app,
        ["bench", "memory", "--messages", "2000", "--rate", "5000", "--seconds", "0.3",
         "--repeats", "1", "--loop", "asyncio", "--output", str(output)],
        env={"COLUMNS": "80"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert "asyncio.Queue" in result.output
    report = json.loads(output.read_text())
    assert set(report) == {"bench", "finished", "machine", "config", "results"}
    assert {"python", "cpu", "cpus", "versions"} <= set(report["machine"])
    latency = report["results"]["asyncio"]["latency"]["starmesh"]
    assert len(latency["cdf_us"]) == 101
    picture = output.with_suffix(".png").read_bytes()
    assert picture.startswith(PNG_SIGNATURE)
    assert len(picture) > 10_000


def test_bench_markdown_renders_every_suite_found(tmp_path: Path) -> None:
    report = {"bench": "peers", "finished": "2026-11-30T10:00:00+00:00",
              "machine": {"cpu": "Test CPU", "cpus": 2, "python": "3.11.7", "starmesh": "0.1",
                          "git": "abc1234", "versions": {"redis": "8.1.0"}},
              "config": {}, "results": _peer_results()}  # fmt: skip
    (tmp_path / "peers.json").write_text(json.dumps(report))
    out = tmp_path / "results.md"
    result = CliRunner().invoke(
        app, ["bench", "markdown", "--directory", str(tmp_path), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("Measured 2026-11-30T10:00:00+00:00 on Test CPU (2 cores)")
    assert "redis 8.1.0" in text
    assert "| 20 | starmesh | 412,345 |" in text


def test_bench_markdown_without_results_says_what_to_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "markdown", "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "no results in" in result.output


def test_a_skipped_peer_says_the_whole_install_command() -> None:
    """Cells are text, not rich markup: '[bench]' in a hint must survive printing."""
    results = {"inprocess": {"skipped": "nautilus_trader is not installed: "
                             "pip install -e '.[bench]'"}}  # fmt: skip
    text = _render(suite_tables("peers", results), width=120)
    assert "pip install -e '.[bench]'" in text
