"""The results of each suite as small tables: printed (80 columns) and written as Markdown.

Every figure in a table is read from the suite's JSON results, so the README's table is the
command's output, never typed by hand. Column names and units are short on purpose: a
table must fit an 80-column terminal without a cell being cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

__all__ = ["ResultTable", "suite_tables", "to_markdown", "to_rich"]


@dataclass
class ResultTable:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def to_rich(table: ResultTable) -> Table:
    # Every string is plain Text: a result such as "pip install -e '.[bench]'" is not markup.
    rich_table = Table(
        title=Text(table.title),
        box=box.SIMPLE_HEAD,
        caption=Text(table.note) if table.note else None,
    )
    for index, column in enumerate(table.columns):
        # Cells wrap ("fold") rather than being cut with an ellipsis on a narrow terminal.
        rich_table.add_column(
            Text(column), justify="left" if index < 2 else "right", overflow="fold"
        )
    for row in table.rows:
        rich_table.add_row(*(Text(cell) for cell in row))
    return rich_table


def to_markdown(table: ResultTable) -> str:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in table.rows)
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


_LOOPS = ("asyncio", "uvloop")
"""Results of the memory, redis and hub suites are keyed by loop beside other keys."""


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _spread(ratio: dict[str, float]) -> str:
    return f"{ratio['median']:.2f} ({ratio['low']:.2f}-{ratio['high']:.2f})"


def _memory(results: dict[str, Any]) -> list[ResultTable]:
    table = ResultTable(
        "bench memory: publish -> handler, one process",
        ["loop", "system", "msg/s", "p50 µs", "p99 µs", "max µs"],
        note="msg/s: median of runs; latency one-way at the paced rate",
    )
    for loop, result in results.items():
        if loop not in _LOOPS:
            continue
        for side, label in (("starmesh", "starmesh"), ("baseline_asyncio_queue", "asyncio.Queue")):
            latency = result["latency"][side]
            table.rows.append([loop, label, _n(result["throughput"][side]["median_msgs_per_s"]),
                               _us(latency["p50_us"]), _us(latency["p99_us"]),
                               _us(latency["max_us"])])  # fmt: skip
    return [table]


def _redis(results: dict[str, Any]) -> list[ResultTable]:
    table = ResultTable(
        f"bench redis: two processes, Redis {results['redis']}",
        ["loop", "system", "msg/s", "lossless", "p50 µs", "p99 µs", "flash ms"],
        note="flash ms: p50 of a FLASH_CRASH message behind the backlog",
    )
    for loop, result in results.items():
        if loop not in _LOOPS:
            continue
        sides = (("starmesh", "starmesh", "starmesh"),
                 ("baseline_redis_py", "baseline_fifo", "redis-py"))  # fmt: skip
        for side, flash_side, label in sides:
            latency = result["latency"][side]
            throughput = result["throughput"][side]
            flash = result["flash_crash_behind_backlog"][flash_side]["latency_ms"]
            table.rows.append([loop, label, _n(throughput["msgs_per_s"]),
                               "yes" if throughput["zero_loss"] else "NO",
                               _us(latency["p50_us"]), _us(latency["p99_us"]),
                               f"{flash['p50_us']:.1f}"])  # fmt: skip
    return [table]


def _hub(results: dict[str, Any]) -> list[ResultTable]:
    table = ResultTable(
        "bench hub: get_data through the MarketData Hub",
        ["loop", "measure", "system", "calls/s", "p50 µs", "p99 µs", "CPU µs"],
        note="CPU µs: clients + hub + redis-server per call",
    )
    for loop, result in results.items():
        if loop not in _LOOPS:
            continue
        l1 = result["l1"]
        for side, label in (("starmesh", "starmesh"), ("baseline_async_dict_lookup", "dict")):
            figures = l1[side]
            table.rows.append([loop, "L1", label, _n(figures["calls_per_s"]),
                               _us(figures["p50_us"]), _us(figures["p99_us"]), ""])  # fmt: skip
        for point in result["over_redis"]["points"]:
            measure = f"Redis 13x{point['inflight_per_client']}"
            sides = (("starmesh", "starmesh"), ("starmesh_via_hub", "via hub"),
                     ("baseline_redis_py", "redis-py"))  # fmt: skip
            for side, label in sides:
                if side not in point:  # a report from before the hub path was measured apart
                    continue
                figures = point[side]
                table.rows.append([loop, measure, label, _n(figures["requests_per_s"]),
                                   _us(figures["p50_us"]), _us(figures["p99_us"]),
                                   f"{figures['cpu_us_per_request']['total']:.0f}"])  # fmt: skip
    zipf = results.get("zipf")
    tables = [table]
    if zipf:
        tables.append(
            ResultTable(
                f"Zipf: {zipf['engines']} engines, {zipf['symbols']} symbols",
                ["cache", "system", "hit rate", "upstream"],
                [["shared", "starmesh hub", f"{zipf['starmesh_hub']['hit_rate']:.2%}",
                  f"{zipf['starmesh_hub']['upstream_share']:.2%}"],
                 ["per engine", "baseline", "-",
                  f"{zipf['baseline_cache_per_engine']['upstream_share']:.2%}"]],
            )
        )  # fmt: skip
    return tables


def _peers(results: dict[str, Any]) -> list[ResultTable]:
    tables = []
    inprocess = results.get("inprocess", {})
    if "scenarios" in inprocess:
        table = ResultTable(
            f"in process: starmesh embedded vs NautilusTrader {inprocess['nautilus_trader']}",
            ["subscribers", "system", "publ/s", "p50 µs", "p99 µs", "ratio"],
            note="ratio: starmesh / Nautilus publishes/s, median (low-high) of alternated runs",
        )
        for name, scenario in inprocess["scenarios"].items():
            label = {"subs1": "1", "subs5": "5", "subs20": "20",
                     "patterns50": "5 of 50 patterns"}.get(name, name)  # fmt: skip
            for system in ("nautilus", "starmesh"):
                figures = scenario[system]
                ratio = _spread(scenario["starmesh_over_nautilus"]) if system == "starmesh" else ""
                table.rows.append([label, system, _n(figures["median_publishes_per_s"]),
                                   _us(figures["latency"]["p50_us"]),
                                   _us(figures["latency"]["p99_us"]), ratio])  # fmt: skip
        tables.append(table)
    elif inprocess:
        tables.append(
            ResultTable("in process: NautilusTrader", ["skipped"], [[inprocess["skipped"]]])
        )
    streams = results.get("redis")
    if streams:
        table = ResultTable(
            f"over Redis {streams['redis']}: two processes",
            ["system", "msg/s", "lost", "p50 µs", "p99 µs", "starmesh ÷"],
            note=f"latency at {streams['rate_msgs_per_s']:,.0f} msg/s; starmesh ÷: its msg/s "
            "over the system's, median (low-high)",
        )
        for name, system in streams["systems"].items():
            latency = system.get("latency", {})
            ratio = streams["starmesh_over"].get(name, {}).get("throughput")
            sent = system["throughput"]
            row = [name.replace("_", " "), _n(sent["median_msgs_per_s"]), _n(sent["lost"])]
            row += [_us(latency.get("p50_us")), _us(latency.get("p99_us"))]
            table.rows.append([*row, _spread(ratio) if ratio else ""])
        tables.append(table)
    return tables


def _deployment(results: dict[str, Any]) -> list[ResultTable]:
    mesh = results["mesh"]
    processes = results["processes"]
    engines = [p for p in processes if not p["process"].startswith("redis")]
    overview = ResultTable(
        f"bench deployment: {len(engines)} processes over Redis",
        ["measure", "value"],
        [["handled msg/s", _n(mesh["handled_per_second"])],
         ["  market data", _n(mesh["marketdata_per_second"])],
         ["  engine logic", _n(mesh["logic_per_second"])],
         ["CPU cores", f"{mesh['cpu_cores']:.2f}"],
         ["RSS MiB", _n(mesh["rss_mb"])],
         ["start-up s", f"{results['startup_s']:.1f}"]],
        note=f"window {results['window_s']:.0f} s after warm-up; redis-servers included",
    )  # fmt: skip
    worst = results.get("worst_route")
    if worst is not None:
        overview.rows.append(["worst route p99 µs", f"{_us(worst['p99_us'])} "
                              f"({worst['from']}>{worst['to']})"])  # fmt: skip
    halts = [us for latencies in results.get("halts", {}).values() for us in latencies]
    if halts:
        overview.rows.append(["halt latency µs", ", ".join(_us(us) for us in sorted(halts))])
    routes = ResultTable(
        "busiest routes (p50/p99 of the window)",
        ["from>to", "topic", "msg/s", "p50 µs", "p99 µs"],
        [[f"{r['from']}>{r['to']}", r["topic"], _n(r["per_second"]), _us(r["p50_us"]),
          _us(r["p99_us"])] for r in results["routes"][:15]],
    )  # fmt: skip
    per_process = ResultTable(
        "per process",
        ["process", "cores", "RSS MiB"],
        [[p["process"], f"{p['cpu_cores']:.3f}", _n(p["rss_mb"])] for p in processes],
    )
    return [overview, routes, per_process]


def _websocket(results: dict[str, Any]) -> list[ResultTable]:
    summary = results["summary"]
    base, load = summary["baseline"], summary["loaded"]
    clients = results["clients"]
    rows = [
        ["bus p50, median route", _us(base["bus_p50_us_median"]), _us(load["bus_p50_us_median"])],
        ["bus p99, median route", _us(base["bus_p99_us_median"]), _us(load["bus_p99_us_median"])],
        ["bus p99, worst route", _us(base["bus_p99_us_worst"]), _us(load["bus_p99_us_worst"])],
        ["quotes/s distributed", _n(base["quotes_per_s"]), _n(load["quotes_per_s"])],
        ["platform cores", _cores(base["platform_cores"]), _cores(load["platform_cores"])],
    ]
    layout = "gateway in its own process" if results.get("layout") == "separate" else "embedded"
    overview = ResultTable(
        f"bench websocket ({layout}): the bus without and with {clients} dashboard clients",
        ["measure", "no clients", f"{clients} clients"],
        rows,
        note=(f"p99 ratio (median route) {summary.get('bus_p99_us_median_ratio', '-')}, "
              f"worst route {summary.get('bus_p99_us_worst_ratio', '-')}; medians of "
              f"{len(results['runs']) // 2} runs each"),
    )  # fmt: skip
    browsers = ResultTable(
        "what each client got",
        ["measure", "value"],
        [["messages/s per client (median)", _n(summary["browser_messages_per_s_median"])],
         ["frames/s per client (median)", _n(summary["browser_frames_per_s_median"])],
         ["age of a frame, p99", _us(summary["browser_age_p99_us"])],
         ["clients' process cores", _cores(summary["browsers_cores"])],
         ["gateway process cores", _cores(summary.get("gateway_cores"))]],
    )  # fmt: skip
    return [overview, browsers]


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


_SUITES = {
    "memory": _memory,
    "redis": _redis,
    "hub": _hub,
    "peers": _peers,
    "deployment": _deployment,
    "websocket": _websocket,
}


def suite_tables(suite: str, results: dict[str, Any]) -> list[ResultTable]:
    return _SUITES[suite](results)
