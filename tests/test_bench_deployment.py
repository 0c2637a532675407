"""``starmesh bench deployment``: its arithmetic, and one short real run of processes."""

from __future__ import annotations

import os

import pytest

from starmesh.bench.deployment import (
    resident_mb,
    run_deployment_bench,
    summarise_routes,
    window_halts,
)
from starmesh.core.enums import EngineType
from starmesh.core.latency import LatencyHistogram


def row(process: str, source: str, target: str, messages: int, p99: float) -> dict[str, object]:
    return {"process": process, "from": source, "to": target, "topic": "marketdata.quote.*",
            "messages": messages, "p50_us": p99 / 10, "p99_us": p99}  # fmt: skip


def test_routes_count_the_window_sum_instances_and_keep_the_worst_latency() -> None:
    before = [row("strategy-1", "marketdata", "strategy", 100, 900.0),
              row("strategy-2", "marketdata", "strategy", 40, 800.0)]  # fmt: skip
    after = [row("strategy-1", "marketdata", "strategy", 400, 1_000.0),
             row("strategy-2", "marketdata", "strategy", 240, 3_000.0),
             row("risk", "marketdata", "risk", 50, 500.0)]  # fmt: skip
    strategy, risk = summarise_routes(before, after, window_s=10.0)
    assert strategy["messages"] == (400 - 100) + (240 - 40)
    assert strategy["per_second"] == 50.0
    assert strategy["instances"] == 2
    assert (strategy["p50_us"], strategy["p99_us"]) == (300.0, 3_000.0)
    assert (risk["messages"], risk["per_second"]) == (50, 5.0)  # new in the window: all of it


def test_with_buckets_the_latency_is_the_window_s_not_since_the_start() -> None:
    """A start-up backlog (1 s each) before the window, 1 ms samples in it: the window's p99
    is 1 ms, where the engine's own histogram still says 1 s."""
    histogram = LatencyHistogram()
    for _ in range(100):
        histogram.record(1_000_000_000)
    start = {**row("risk", "marketdata", "risk", 100, 1e6),
             "buckets": {str(b): n for b, n in histogram.buckets().items()}}  # fmt: skip
    for _ in range(50):
        histogram.record(1_000_000)
    end = {**row("risk", "marketdata", "risk", 150, histogram.percentile(99) / 1e3),
           "buckets": {str(b): n for b, n in histogram.buckets().items()}}  # fmt: skip
    (risk,) = summarise_routes([start], [end], window_s=1.0)
    assert end["p99_us"] == pytest.approx(1e6, rel=0.01)
    assert risk["messages"] == 50
    assert risk["p99_us"] == pytest.approx(1_000, rel=0.01)
    assert risk["p50_us"] == pytest.approx(1_000, rel=0.01)


def test_the_halts_of_the_window_are_those_listed_at_its_end_and_not_at_its_start() -> None:
    before = {"strategy-1": [120.5], "strategy-2": []}
    after = {"strategy-1": [120.5, 900.0], "strategy-2": [1_500.0], "strategy-3": [80.0]}
    assert window_halts(before, after) == {
        "strategy-1": [900.0], "strategy-2": [1_500.0], "strategy-3": [80.0]
    }  # fmt: skip


def test_resident_memory_is_read_for_a_live_process_only() -> None:
    mine = resident_mb(os.getpid())
    assert mine is not None
    assert 10 < mine < 4_096
    assert resident_mb(2**22 + 12_345) is None


async def test_a_short_run_measures_every_process_and_the_market_data_routes() -> None:
    results = await run_deployment_bench(
        symbols=2, quotes_per_second=50, instances={EngineType.STRATEGY: 2}, warmup_s=1.0,
        window_s=2.0, engines=[EngineType.STRATEGY], port_offset=41,
    )  # fmt: skip
    names = {p["process"] for p in results["processes"]}
    assert names == {"marketdata", "strategy-1", "strategy-2", "redis-marketdata", "redis-logic"}
    assert results["unread"] == []
    assert results["restarts"] == {}, "\n".join(results["errors"])
    quotes = [r for r in results["routes"] if r["topic"] == "marketdata.quote.*"]
    assert [(r["from"], r["to"], r["instances"]) for r in quotes] == [("marketdata", "strategy", 2)]
    assert quotes[0]["messages"] > 0
    assert results["mesh"]["marketdata_per_second"] > 0
    assert results["worst_route"] == max(results["routes"], key=lambda r: r["p99_us"])
    # Each instance's /health was read (no crash was played: no halt in the window).
    assert results["halts"] == {"strategy-1": [], "strategy-2": []}
