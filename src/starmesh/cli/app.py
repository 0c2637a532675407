"""The ``starmesh`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from starmesh.__about__ import __version__
from starmesh.bench.loops import LoopName, available_loops, run_on
from starmesh.cli import hub as hub_commands
from starmesh.cli import sources as sources_commands

app = typer.Typer(
    name="starmesh",
    help="The communication layer of a multi-engine trading platform.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Measure starmesh beside a baseline; results go to JSON.")
app.add_typer(bench_app, name="bench")
console = Console()
hub_commands.register(app, console)
sources_commands.register(app)

LoopOption = Annotated[
    str, typer.Option("--loop", help="Event loop: asyncio, uvloop, or all (benchmarks).")
]


def _loops(choice: str, allow_all: bool) -> list[LoopName]:
    available = available_loops()
    if allow_all and choice == "all":
        return available
    for name in available:
        if name == choice:
            return [name]
    raise typer.BadParameter(f"loop must be one of {', '.join(available)}")


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(f"starmesh {__version__}")


@app.command()
def run(
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run; default: until Ctrl-C.", min=0.1)
    ] = None,
    rate: Annotated[float, typer.Option(help="Simulated quotes per second.", min=1)] = 2_000,
    loop: LoopOption = "asyncio",
) -> None:
    """Run the platform on the embedded bus: engines exchanging messages, live."""
    from starmesh.cli.live import run_demo

    (chosen,) = _loops(loop, allow_all=False)
    run_on(chosen, run_demo(duration, rate, console))


@bench_app.command("memory")
def bench_memory(
    messages: Annotated[
        int, typer.Option(help="Messages per throughput run.", min=1_000)
    ] = 300_000,
    rate: Annotated[float, typer.Option(help="Paced rate for latency, msg/s.", min=1)] = 10_000,
    seconds: Annotated[float, typer.Option(help="Seconds of paced latency samples.", min=0.1)] = 3,
    repeats: Annotated[int, typer.Option(help="Throughput runs per side.", min=1)] = 3,
    loop: LoopOption = "all",
    output: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path(
        "bench-results/memory.json"
    ),
) -> None:
    """Publish -> handler on the embedded bus, beside a bare asyncio.Queue hop."""
    from starmesh.bench.machine import write_report
    from starmesh.bench.memory import TARGETS, run_memory_bench

    loops = _loops(loop, allow_all=True)
    config = {
        "messages": messages,
        "rate": rate,
        "seconds": seconds,
        "repeats": repeats,
        "loops": loops,
        "targets": TARGETS,
    }
    with console.status("measuring the memory transport..."):
        results = run_memory_bench(
            messages=messages, rate=rate, seconds=seconds, repeats=repeats, loops=loops
        )
    write_report(output, "memory", config, results)
    table = Table(title="starmesh bench memory (median of runs; latency one-way)")
    for column in ("loop", "side", "msg/s", "p50 µs", "p90 µs", "p99 µs", "max µs"):
        table.add_column(column, justify="right")
    for name, result in results.items():
        for side in ("starmesh", "baseline_asyncio_queue"):
            throughput = result["throughput"][side]
            latency = result["latency"][side]
            table.add_row(
                name,
                side,
                f"{throughput['median_msgs_per_s']:,}",
                f"{latency['p50_us']}",
                f"{latency['p90_us']}",
                f"{latency['p99_us']}",
                f"{latency['max_us']}",
            )
        table.add_row(
            name,
            "starmesh / baseline",
            f"{result['throughput']['starmesh_over_baseline']}",
            f"{result['latency']['p50_over_baseline']}",
            "",
            f"{result['latency']['p99_over_baseline']}",
            "",
        )
    console.print(table)
    console.print(json.dumps({k: v["targets_met"] for k, v in results.items()}))
    console.print(f"results written to {output}")


@bench_app.command("redis")
def bench_redis(
    url: Annotated[
        str | None, typer.Option(help="Use this Redis (default: start a private redis-server).")
    ] = None,
    rate: Annotated[float, typer.Option(help="Paced rate for latency, msg/s.", min=1)] = 2_000,
    seconds: Annotated[float, typer.Option(help="Seconds of paced latency samples.", min=0.5)] = 5,
    messages: Annotated[
        int, typer.Option(help="Messages in the throughput run.", min=1_000)
    ] = 200_000,
    backlog: Annotated[
        int, typer.Option(help="NORMAL messages ahead of the FLASH_CRASH one.", min=1)
    ] = 50_000,
    loop: LoopOption = "all",
    output: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path(
        "bench-results/redis.json"
    ),
) -> None:
    """Engine -> engine over Redis Streams in two processes, beside a bare redis-py loop."""
    from starmesh.bench.machine import write_report
    from starmesh.bench.redis import TARGETS, run_redis_bench

    loops = _loops(loop, allow_all=True)
    config = {"url": url, "rate": rate, "seconds": seconds, "messages": messages,
              "backlog": backlog, "loops": loops, "targets": TARGETS}  # fmt: skip
    with console.status("measuring the Redis transport..."):
        results = run_redis_bench(
            url=url, rate=rate, seconds=seconds, messages=messages, backlog=backlog, loops=loops
        )
    write_report(output, "redis", config, results)
    table = Table(title=f"starmesh bench redis (Redis {results['redis']}, two processes)")
    for column in ("loop", "side", "p50 µs", "p99 µs", "max µs", "msg/s", "lossless",
                   "flash p50 ms", "flash max ms"):  # fmt: skip
        table.add_column(column, justify="right")
    for name in loops:
        result = results[name]
        for side, flash_side in (("starmesh", "starmesh"), ("baseline_redis_py", "baseline_fifo")):
            latency = result["latency"][side]
            throughput = result["throughput"][side]
            flash = result["flash_crash_behind_backlog"][flash_side]
            table.add_row(
                name, side, f"{latency['p50_us']}", f"{latency['p99_us']}", f"{latency['max_us']}",
                f"{throughput['msgs_per_s']:,}", str(throughput["zero_loss"]),
                f"{flash['latency_ms']['p50_us']}", f"{flash['latency_ms']['max_us']}",
            )  # fmt: skip
    console.print(table)
    console.print(json.dumps({name: results[name]["targets_met"] for name in loops}))
    console.print(f"results written to {output}")


@bench_app.command("hub")
def bench_hub(
    url: Annotated[
        str | None, typer.Option(help="Use this Redis (default: start a private redis-server).")
    ] = None,
    calls: Annotated[int, typer.Option(help="L1 get_data calls.", min=1_000)] = 200_000,
    seconds: Annotated[float, typer.Option(help="Seconds of requests over Redis.", min=0.5)] = 5,
    inflight: Annotated[
        list[int] | None,
        typer.Option(help="Requests under way per client; repeat for a sweep (default 1, 2, 4)."),
    ] = None,
    zipf_rate: Annotated[
        float, typer.Option(help="Zipf: requests per engine per simulated second.", min=1)
    ] = 2_000,
    zipf_seconds: Annotated[float, typer.Option(help="Zipf: simulated seconds.", min=1)] = 60,
    loop: LoopOption = "all",
    output: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path(
        "bench-results/hub.json"
    ),
) -> None:
    """The MarketData Hub: L1 get_data, requests over Redis from 13 engines, a Zipf workload."""
    from starmesh.bench.hub import TARGETS, run_hub_bench
    from starmesh.bench.machine import write_report

    loops = _loops(loop, allow_all=True)
    inflight = inflight or [1, 2, 4]
    if min(inflight) < 1:
        raise typer.BadParameter("every --inflight must be at least 1", param_hint="--inflight")
    config = {"url": url, "calls": calls, "seconds": seconds, "inflight": inflight,
              "zipf_rate": zipf_rate, "zipf_seconds": zipf_seconds, "loops": loops,
              "targets": TARGETS}  # fmt: skip
    with console.status("measuring the MarketData Hub..."):
        results = run_hub_bench(
            url=url, calls=calls, seconds=seconds, inflight=inflight, zipf_rate=zipf_rate,
            zipf_seconds=zipf_seconds, loops=loops,
        )  # fmt: skip
    write_report(output, "hub", config, results)
    table = Table(title="starmesh bench hub")
    for column in ("loop", "measure", "side", "per s", "p50 µs", "p99 µs", "CPU µs/req"):
        table.add_column(column, justify="right")
    for name in loops:
        l1 = results[name]["l1"]
        for side in ("starmesh", "baseline_async_dict_lookup"):
            figures = l1[side]
            table.add_row(
                name, "L1 get_data", side, f"{figures['calls_per_s']:,}",
                f"{figures['p50_us']}", f"{figures['p99_us']}", "",
            )  # fmt: skip
        for point in results[name]["over_redis"]["points"]:
            measure = f"Redis, 13x{point['inflight_per_client']}"
            for side in ("starmesh", "baseline_redis_py"):
                figures = point[side]
                table.add_row(
                    name, measure, side, f"{figures['requests_per_s']:,}",
                    f"{figures['p50_us']}", f"{figures['p99_us']}",
                    f"{figures['cpu_us_per_request']['total']}",
                )  # fmt: skip
    console.print(table)
    best = results["best"]
    console.print(
        f"{TARGETS['redis_requests_per_s']:,} req/s over Redis would take "
        f"{best['redis_cores_for_target_rate']} cores at the cheapest CPU cost per request "
        f"measured; this machine has {best['cpus']}."
    )
    zipf = results["zipf"]
    hub, own = zipf["starmesh_hub"], zipf["baseline_cache_per_engine"]
    console.print(
        f"Zipf, {zipf['engines']} engines x {zipf['requests_per_engine_per_s']:,.0f} req/s over "
        f"{zipf['symbols']} symbols for {zipf['simulated_seconds']:g} simulated s: hub hit rate "
        f"{hub['hit_rate']:.2%}, upstream {hub['upstream_share']:.2%} of requests "
        f"(a cache per engine: {own['upstream_share']:.2%})"
    )
    console.print(json.dumps(results["targets_met"]))
    console.print(f"results written to {output}")


def main() -> None:
    app()
