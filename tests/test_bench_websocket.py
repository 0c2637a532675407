"""``starmesh bench websocket``: its arithmetic, and one short real run with clients."""

from __future__ import annotations

from starmesh.bench.tables import suite_tables
from starmesh.bench.websocket import bus_latency, run_websocket_bench


def route(target: str, messages: int, p50: float, p99: float) -> dict[str, object]:
    return {"from": "marketdata", "to": target, "topic": "marketdata.quote.*",
            "messages": messages, "p50_us": p50, "p99_us": p99}  # fmt: skip


def test_the_bus_is_the_routes_between_engines_with_enough_messages() -> None:
    routes = [route("risk", 500, 100.0, 400.0), route("strategy", 800, 120.0, 900.0),
              route("portfolio", 600, 90.0, 500.0),
              route("*", 5_000, 1_000.0, 90_000.0),  # the browsers' own route
              route("collateral", 3, 50.0, 70_000.0)]  # too few to say anything  # fmt: skip
    assert bus_latency(routes) == {
        "routes": 3, "p50_us_median": 100.0, "p99_us_median": 500.0, "p99_us_worst": 900.0,
        "worst_route": "marketdata>strategy marketdata.quote.*",
    }  # fmt: skip
    assert bus_latency([route("*", 5_000, 1.0, 2.0)]) == {"routes": 0}


async def test_a_short_run_serves_every_client_and_measures_the_bus_both_ways() -> None:
    results = await run_websocket_bench(
        clients=4, symbols=2, quotes_per_second=100, warmup_s=0.5, window_s=1.5, repeats=1
    )
    baseline, loaded = results["runs"]
    assert (baseline["clients"], loaded["clients"]) == (0, 4)
    assert baseline["browsers"] is None
    assert baseline["to_browsers"] is None  # nobody connected: nothing left for browsers
    seen = loaded["browsers"]
    assert seen["clients"] == 4
    assert seen["failed"] == 0
    assert seen["frames_per_client_per_s"]["min"] > 0  # every client got quotes
    assert 0 < seen["age_p50_us"] <= seen["age_p99_us"]
    assert loaded["to_browsers"]["messages"] > 0
    for run in results["runs"]:
        assert run["bus"]["routes"] > 0
        assert run["quotes_per_s"] > 0
        assert run["cpu_cores"]["platform"] > 0
    assert "browsers" in loaded["cpu_cores"]
    summary = results["summary"]
    assert summary["bus_p99_us_median_ratio"] > 0
    titles = [table.title for table in suite_tables("websocket", results)]
    assert titles[0] == "bench websocket (embedded): the bus without and with 4 dashboard clients"


async def test_the_gateway_in_a_process_of_its_own_serves_the_clients_over_redis() -> None:
    results = await run_websocket_bench(
        clients=2, symbols=2, quotes_per_second=100, warmup_s=0.5, window_s=1.5, repeats=1,
        separate=True,
    )  # fmt: skip
    assert results["layout"] == "separate"
    baseline, loaded = results["runs"]
    assert loaded["browsers"]["failed"] == 0
    assert loaded["browsers"]["frames_per_client_per_s"]["min"] > 0
    assert loaded["cpu_cores"]["gateway"] > 0
    assert baseline["bus"]["routes"] > 0  # the other engines, over Redis in this process
    assert baseline["to_browsers"] is None  # the gateway's route is counted in its own process
