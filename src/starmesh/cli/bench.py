"""``starmesh bench memory|redis|hub|peers|all|markdown``: measurements beside baselines and peers.

Each suite prints its tables (they fit 80 columns), writes ``bench-results/<suite>.json``
(machine, versions, parameters, raw percentiles) and ``bench-results/<suite>.png``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from starmesh.bench.loops import LoopName, available_loops
from starmesh.bench.machine import machine_info, write_report
from starmesh.bench.plots import plot_suite
from starmesh.bench.tables import suite_tables, to_markdown, to_rich
from starmesh.cli.options import scenario_named

__all__ = ["bench_app", "register"]

bench_app = typer.Typer(help="Measure starmesh beside baselines and peers: tables, JSON, plots.")
_console = Console()
SUITES = ("memory", "redis", "hub", "peers")
REPORTED = (*SUITES, "deployment", "websocket")
"""Suites the Markdown report reads; ``deployment`` and ``websocket`` run on their own (each
takes minutes)."""

LoopOption = Annotated[str, typer.Option("--loop", help="Event loop: asyncio, uvloop, or all.")]
UrlOption = Annotated[
    str | None, typer.Option(help="Use this Redis (default: start a private redis-server).")
]
OutDir = Annotated[Path, typer.Option(help="Where to write <suite>.json and <suite>.png.")]


def register(app: typer.Typer, console: Console) -> None:
    global _console
    _console = console
    app.add_typer(bench_app, name="bench")


def _loops(choice: str) -> list[LoopName]:
    available = available_loops()
    if choice == "all":
        return available
    for name in available:
        if name == choice:
            return [name]
    raise typer.BadParameter(f"loop must be one of {', '.join(available)}")


def _finish(suite: str, output: Path, config: dict[str, Any], results: dict[str, Any]) -> None:
    write_report(output, suite, config, results)
    for table in suite_tables(suite, results):
        _console.print(to_rich(table))
    # Results and hints are plain text: "[bench]" or a JSON list is not rich markup.
    if "targets_met" in results:
        _console.print(f"targets met: {json.dumps(results['targets_met'])}", markup=False)
    picture = output.with_suffix(".png")
    drawn = plot_suite(suite, results, picture)
    where = f" and {picture}" if drawn else " (no plot: pip install -e '.[bench]' for matplotlib)"
    _console.print(f"results written to {output}{where}", markup=False)


@bench_app.command("memory")
def bench_memory(
    messages: Annotated[
        int, typer.Option(help="Messages per throughput run.", min=1_000)
    ] = 300_000,
    rate: Annotated[float, typer.Option(help="Paced rate for latency, msg/s.", min=1)] = 10_000,
    seconds: Annotated[float, typer.Option(help="Seconds of paced latency samples.", min=0.1)] = 3,
    repeats: Annotated[int, typer.Option(help="Throughput runs per side.", min=1)] = 3,
    loop: LoopOption = "all",
    output: Annotated[Path, typer.Option(help="The JSON file (the plot goes beside it).")] = Path(
        "bench-results/memory.json"
    ),
) -> None:
    """Publish -> handler on the embedded bus, beside a bare asyncio.Queue hop."""
    from starmesh.bench.memory import TARGETS, run_memory_bench

    loops = _loops(loop)
    config = {"messages": messages, "rate": rate, "seconds": seconds, "repeats": repeats,
              "loops": loops, "targets": TARGETS}  # fmt: skip
    with _console.status("measuring the memory transport..."):
        results = run_memory_bench(
            messages=messages, rate=rate, seconds=seconds, repeats=repeats, loops=loops
        )
    _finish("memory", output, config, results)


@bench_app.command("redis")
def bench_redis(
    url: UrlOption = None,
    rate: Annotated[float, typer.Option(help="Paced rate for latency, msg/s.", min=1)] = 2_000,
    seconds: Annotated[float, typer.Option(help="Seconds of paced latency samples.", min=0.5)] = 5,
    messages: Annotated[int, typer.Option(help="Messages in the throughput run.", min=1_000)] = (
        200_000
    ),
    backlog: Annotated[
        int, typer.Option(help="NORMAL messages ahead of the FLASH_CRASH one.", min=1)
    ] = 50_000,
    loop: LoopOption = "all",
    output: Annotated[Path, typer.Option(help="The JSON file (the plot goes beside it).")] = Path(
        "bench-results/redis.json"
    ),
) -> None:
    """Engine -> engine over Redis Streams in two processes, beside a bare redis-py loop."""
    from starmesh.bench.redis import TARGETS, run_redis_bench

    loops = _loops(loop)
    config = {"url": url, "rate": rate, "seconds": seconds, "messages": messages,
              "backlog": backlog, "loops": loops, "targets": TARGETS}  # fmt: skip
    with _console.status("measuring the Redis transport..."):
        results = run_redis_bench(
            url=url, rate=rate, seconds=seconds, messages=messages, backlog=backlog, loops=loops
        )
    results["targets_met"] = {name: results[name]["targets_met"] for name in loops}
    _finish("redis", output, config, results)


@bench_app.command("hub")
def bench_hub(
    url: UrlOption = None,
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
    output: Annotated[Path, typer.Option(help="The JSON file (the plot goes beside it).")] = Path(
        "bench-results/hub.json"
    ),
) -> None:
    """The MarketData Hub: L1 get_data, requests over Redis from 13 engines, a Zipf workload."""
    from starmesh.bench.hub import TARGETS, run_hub_bench

    loops = _loops(loop)
    inflight = inflight or [1, 2, 4]
    if min(inflight) < 1:
        raise typer.BadParameter("every --inflight must be at least 1", param_hint="--inflight")
    config = {"url": url, "calls": calls, "seconds": seconds, "inflight": inflight,
              "zipf_rate": zipf_rate, "zipf_seconds": zipf_seconds, "loops": loops,
              "targets": TARGETS}  # fmt: skip
    with _console.status("measuring the MarketData Hub..."):
        results = run_hub_bench(
            url=url, calls=calls, seconds=seconds, inflight=inflight, zipf_rate=zipf_rate,
            zipf_seconds=zipf_seconds, loops=loops,
        )  # fmt: skip
    _finish("hub", output, config, results)


@bench_app.command("peers")
def bench_peers(
    url: UrlOption = None,
    messages: Annotated[
        int, typer.Option(help="In process: publishes per run.", min=1_000)
    ] = 30_000,
    inprocess_repeats: Annotated[
        int,
        typer.Option(
            help="In process: alternated runs per system (many short runs: a machine whose "
            "speed drifts over seconds disturbs both sides alike).",
            min=1,
        ),
    ] = 9,
    stream_messages: Annotated[
        int, typer.Option(help="Over Redis: messages per throughput run.", min=100)
    ] = 30_000,
    rate: Annotated[float, typer.Option(help="Over Redis: paced rate for latency.", min=1)] = 2_000,
    seconds: Annotated[float, typer.Option(help="Seconds of paced latency samples.", min=0.1)] = 3,
    repeats: Annotated[int, typer.Option(help="Alternated runs per system.", min=1)] = 3,
    loop: Annotated[str, typer.Option("--loop", help="Event loop: asyncio or uvloop.")] = "asyncio",
    only: Annotated[str | None, typer.Option(help="Run one half only: inprocess or redis.")] = None,
    output: Annotated[Path, typer.Option(help="The JSON file (the plot goes beside it).")] = Path(
        "bench-results/peers.json"
    ),
) -> None:
    """starmesh beside NautilusTrader's MessageBus, FastStream, raw redis-py and pub/sub."""
    from starmesh.bench.goals import peer_goals
    from starmesh.bench.inprocess import run_inprocess_bench
    from starmesh.bench.streams import run_streams_bench

    (chosen,) = _loops(loop)
    if only not in (None, "inprocess", "redis"):
        raise typer.BadParameter("--only takes inprocess or redis", param_hint="--only")
    config = {"url": url, "messages": messages, "inprocess_repeats": inprocess_repeats,
              "stream_messages": stream_messages, "rate": rate, "seconds": seconds,
              "repeats": repeats, "loop": chosen, "only": only}  # fmt: skip
    results: dict[str, Any] = {}
    if only is not None and output.exists():
        # Keep the other half of an earlier run: one half can be rerun alone.
        earlier = json.loads(output.read_text()).get("results", {})
        results = {k: v for k, v in earlier.items() if k in ("inprocess", "redis")}
    if only in (None, "inprocess"):
        with _console.status("in process: starmesh and NautilusTrader..."):
            results["inprocess"] = run_inprocess_bench(
                messages=messages,
                rate=10_000,
                seconds=seconds,
                repeats=inprocess_repeats,
                loop=chosen,
            )
    if only in (None, "redis"):
        with _console.status("over Redis: starmesh, FastStream, redis-py, pub/sub..."):
            results["redis"] = run_streams_bench(
                url=url, messages=stream_messages, rate=rate, seconds=seconds, repeats=repeats,
                loop=chosen,
            )  # fmt: skip
    results["goals"] = peer_goals(results)
    _finish("peers", output, config, results)
    for goal, verdict in results["goals"].items():
        _console.print(f"{goal}: {verdict}")


@bench_app.command("deployment")
def bench_deployment(
    url: Annotated[
        str | None,
        typer.Option(help="Engine Logic Bus to use (default: start two private redis-servers)."),
    ] = None,
    marketdata_url: Annotated[
        str | None, typer.Option(help="MarketData Bus, with --url (default: the same server).")
    ] = None,
    instances: Annotated[
        list[str] | None,
        typer.Option(help="engine=count, repeatable (default: strategy=3, two extra)."),
    ] = None,
    symbols: Annotated[int, typer.Option(help="Simulated symbols.", min=1, max=100)] = 20,
    rate: Annotated[float, typer.Option(help="Simulated quotes per second.", min=1)] = 1_000,
    warmup: Annotated[float, typer.Option(help="Seconds before the window.", min=0)] = 20,
    window: Annotated[float, typer.Option(help="Seconds measured.", min=1)] = 60,
    port_offset: Annotated[
        int, typer.Option(help="Added to every engine's port (beside a running platform).")
    ] = 0,
    engines: Annotated[
        str | None,
        typer.Option(help="Comma-separated engines (default: every engine); the hub always."),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            help="flash-crash: a symbol falls 8% at once, in the window; "
            "reports each Strategy's halt latency.",
            callback=scenario_named,
        ),
    ] = None,
    output: Annotated[Path, typer.Option(help="The JSON file (the plot goes beside it).")] = Path(
        "bench-results/deployment.json"
    ),
) -> None:
    """The hub and every engine as separate processes over Redis: throughput, p99 per route,
    CPU and memory per process."""
    import asyncio

    from starmesh.bench.deployment import run_deployment_bench
    from starmesh.cli.app import _engine_list
    from starmesh.cli.up import parse_instances
    from starmesh.core.enums import EngineType
    from starmesh.platform.config import ALL_ENGINES

    chosen = ALL_ENGINES if engines is None else _engine_list(engines)
    counts = parse_instances(instances or ["strategy=3"])
    if unknown := sorted(set(counts) - {e.value for e in (*chosen, EngineType.MARKETDATA)}):
        raise typer.BadParameter(f"{unknown} are not among the engines run",
                                 param_hint="--instances")  # fmt: skip
    # The hub's clock starts when the hub is ready, before the others: half-way through the
    # window counted from there falls inside the window.
    crash_after_s = None if scenario is None else warmup + window / 2
    config = {"url": url, "marketdata_url": marketdata_url, "instances": counts,
              "symbols": symbols, "rate": rate, "warmup_s": warmup, "window_s": window,
              "engines": [e.value for e in chosen], "scenario": scenario,
              "crash_after_s": crash_after_s}  # fmt: skip
    with _console.status("running the platform as processes..."):
        results = asyncio.run(
            run_deployment_bench(
                url=url, marketdata_url=marketdata_url, symbols=symbols,
                quotes_per_second=rate, warmup_s=warmup, window_s=window,
                instances={EngineType(name): n for name, n in counts.items()},
                port_offset=port_offset, engines=chosen, crash_after_s=crash_after_s,
            )
        )  # fmt: skip
    _finish("deployment", output, config, results)
    if results["unread"]:
        _console.print(f"[yellow]not read:[/yellow] {results['unread']}")


@bench_app.command("websocket")
def bench_websocket(
    clients: Annotated[int, typer.Option(help="Dashboard clients (WebSockets).", min=1)] = 100,
    symbols: Annotated[int, typer.Option(help="Simulated symbols.", min=1, max=100)] = 20,
    rate: Annotated[float, typer.Option(help="Simulated quotes per second.", min=1)] = 1_000,
    pattern: Annotated[
        list[str] | None,
        typer.Option(help="What each client follows, repeatable (default: marketdata.quote.*)."),
    ] = None,
    warmup: Annotated[float, typer.Option(help="Seconds before each window.", min=0)] = 5,
    window: Annotated[float, typer.Option(help="Seconds measured per run.", min=1)] = 20,
    repeats: Annotated[int, typer.Option(help="Runs of each side, alternated.", min=1)] = 2,
    separate: Annotated[
        bool,
        typer.Option(
            help="The WebSocket engine in a process of its own, over two private "
            "redis-servers (as deployed), rather than in the platform's process."
        ),
    ] = False,
    output: Annotated[Path, typer.Option(help="The JSON file (the plot goes beside it).")] = Path(
        "bench-results/websocket.json"
    ),
) -> None:
    """The dashboard's fan-out: the bus's p99 without and with many WebSocket clients."""
    import asyncio

    from starmesh.bench.websocket import run_websocket_bench

    patterns = tuple(pattern or ["marketdata.quote.*"])
    config = {"clients": clients, "symbols": symbols, "rate": rate, "patterns": patterns,
              "warmup_s": warmup, "window_s": window, "repeats": repeats,
              "separate": separate}  # fmt: skip
    with _console.status(f"the platform without and with {clients} dashboard clients..."):
        results = asyncio.run(
            run_websocket_bench(
                clients=clients, symbols=symbols, quotes_per_second=rate, patterns=patterns,
                warmup_s=warmup, window_s=window, repeats=repeats, separate=separate,
            )
        )  # fmt: skip
    _finish("websocket", output, config, results)


@bench_app.command("all")
def bench_all(
    loop: LoopOption = "asyncio",
    repeats: Annotated[int, typer.Option(help="Alternated runs per system.", min=1)] = 3,
    directory: OutDir = Path("bench-results"),
    markdown: Annotated[
        Path | None, typer.Option(help="Also write every table as Markdown to this file.")
    ] = None,
) -> None:
    """Every suite, one after the other; then the Markdown of all their tables if asked."""
    bench_memory(repeats=repeats, loop=loop, output=directory / "memory.json")
    bench_redis(loop=loop, output=directory / "redis.json")
    bench_hub(loop=loop, output=directory / "hub.json")
    bench_peers(repeats=repeats, loop="asyncio" if loop == "all" else loop, only=None,
                output=directory / "peers.json")  # fmt: skip
    if markdown is not None:
        bench_markdown(directory=directory, output=markdown)


@bench_app.command("markdown")
def bench_markdown(
    directory: OutDir = Path("bench-results"),
    output: Annotated[Path | None, typer.Option(help="Write here instead of printing.")] = None,
) -> None:
    """The tables of every suite found in DIRECTORY's JSON, as Markdown with date and machine."""
    reports = [json.loads((directory / f"{s}.json").read_text()) for s in REPORTED
               if (directory / f"{s}.json").exists()]  # fmt: skip
    if not reports:
        raise typer.BadParameter(f"no results in {directory}; run `starmesh bench all` first")
    text = markdown_report(reports)
    if output is None:
        _console.print(text, markup=False, highlight=False)
    else:
        output.write_text(text)
        _console.print(f"Markdown written to {output}")


def markdown_report(reports: list[dict[str, Any]]) -> str:
    machine = reports[0]["machine"] if reports else machine_info()
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v)
    finished = max(r["finished"] for r in reports) if reports else dt.datetime.now(dt.UTC)
    parts = [
        f"Measured {finished} on {machine['cpu']} ({machine['cpus']} cores), Python "
        f"{machine['python']}, starmesh {machine['starmesh']} ({machine['git']}); {versions}.\n"
    ]
    for report in reports:
        parts.extend(
            to_markdown(table) for table in suite_tables(report["bench"], report["results"])
        )
    return "\n".join(parts)
