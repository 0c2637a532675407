"""A picture per suite (``bench-results/<suite>.png``): latency CDFs, throughput bars per
system, the hub's hit rate over time. matplotlib comes with the ``bench`` extra; without it
no plot is drawn and the caller says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["plot_suite"]

_LOOPS = ("asyncio", "uvloop")
_Cdfs = dict[str, list[float]]
_Bars = dict[str, float]


def _cdf(ax: Any, title: str, cdfs: _Cdfs) -> None:
    percent = list(range(101))
    for label, values in cdfs.items():
        ax.plot(values, percent, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency, µs (log)")
    ax.set_ylabel("percentile")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _bars(ax: Any, title: str, bars: _Bars, unit: str) -> None:
    ax.bar(list(bars), list(bars.values()), color="tab:blue")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.grid(axis="y", alpha=0.3)


def _panels_memory(results: dict[str, Any]) -> list[tuple[str, Any]]:
    cdfs: _Cdfs = {}
    bars: _Bars = {}
    for loop, result in results.items():
        if loop not in _LOOPS:
            continue
        for side in ("starmesh", "baseline_asyncio_queue"):
            cdfs[f"{side} {loop}"] = result["latency"][side]["cdf_us"]
            bars[f"{side[:8]} {loop}"] = result["throughput"][side]["median_msgs_per_s"]
    return [("cdf", ("publish -> handler", cdfs)), ("bars", ("throughput", bars, "msg/s"))]


def _panels_redis(results: dict[str, Any]) -> list[tuple[str, Any]]:
    cdfs: _Cdfs = {}
    bars: _Bars = {}
    for loop, result in results.items():
        if loop not in _LOOPS:
            continue
        for side in ("starmesh", "baseline_redis_py"):
            cdfs[f"{side} {loop}"] = result["latency"][side]["cdf_us"]
            bars[f"{side[:8]} {loop}"] = result["throughput"][side]["msgs_per_s"]
    return [("cdf", ("two processes via Redis", cdfs)), ("bars", ("throughput", bars, "msg/s"))]


def _panels_hub(results: dict[str, Any]) -> list[tuple[str, Any]]:
    bars: _Bars = {}
    cdfs: _Cdfs = {}
    for loop, result in results.items():
        if loop not in _LOOPS:
            continue
        for point in result["over_redis"]["points"]:
            depth = point["inflight_per_client"]
            for side, label in (("starmesh", "starmesh"), ("starmesh_via_hub", "via hub"),
                                ("baseline_redis_py", "redis-py")):  # fmt: skip
                if side in point:
                    bars[f"{label} {loop} x{depth}"] = point[side]["requests_per_s"]
                    cdfs[f"{label} {loop} x{depth}"] = point[side]["cdf_us"]
    panels: list[tuple[str, Any]] = [
        ("bars", ("get_data over Redis", bars, "calls/s")),
        ("cdf", ("get_data over Redis", cdfs)),
    ]
    hit_rates = results.get("zipf", {}).get("hit_rate_per_s")
    if hit_rates:
        panels.append(("line", ("hub hit rate per simulated second", hit_rates)))
    return panels


def _panels_peers(results: dict[str, Any]) -> list[tuple[str, Any]]:
    panels: list[tuple[str, Any]] = []
    scenarios = results.get("inprocess", {}).get("scenarios", {})
    if scenarios:
        bars: _Bars = {}
        for name, scenario in scenarios.items():
            for system in ("nautilus", "starmesh"):
                bars[f"{system[:5]} {name}"] = scenario[system]["median_publishes_per_s"]
        panels.append(("bars", ("in process", bars, "publishes/s")))
        cdfs = {f"{system} {name}": scenario[system]["latency"]["cdf_us"]
                for name, scenario in scenarios.items() if name in ("subs1", "subs20")
                for system in ("nautilus", "starmesh")}  # fmt: skip
        panels.append(("cdf", ("in process, per hop", cdfs)))
    streams = results.get("redis", {}).get("systems", {})
    if streams:
        rates = {name: s["throughput"]["median_msgs_per_s"] for name, s in streams.items()}
        panels.append(("bars", ("over Redis, sustained", rates, "msg/s")))
        cdfs = {name: s["latency"]["cdf_us"] for name, s in streams.items() if "latency" in s}
        panels.append(("cdf", ("over Redis, one way", cdfs)))
    return panels


def _panels_deployment(results: dict[str, Any]) -> list[tuple[str, Any]]:
    cores: _Bars = {p["process"]: p["cpu_cores"] for p in results["processes"]}
    memory: _Bars = {p["process"]: p["rss_mb"] or 0.0 for p in results["processes"]}
    return [("bars", ("CPU per process", cores, "cores")),
            ("bars", ("memory per process", memory, "RSS MiB"))]  # fmt: skip


def _panels_websocket(results: dict[str, Any]) -> list[tuple[str, Any]]:
    summary = results["summary"]
    clients = results["clients"]
    p99: _Bars = {
        f"{side}, {which}": summary[side][f"bus_p99_us_{which}"] or 0.0
        for side in ("baseline", "loaded") for which in ("median", "worst")
    }  # fmt: skip
    return [("bars", (f"bus p99 without and with {clients} clients", p99, "µs"))]


_PANELS: dict[str, Callable[[dict[str, Any]], list[tuple[str, Any]]]] = {
    "memory": _panels_memory,
    "redis": _panels_redis,
    "hub": _panels_hub,
    "peers": _panels_peers,
    "deployment": _panels_deployment,
    "websocket": _panels_websocket,
}


def plot_suite(suite: str, results: dict[str, Any], path: Path) -> bool:
    """Draw ``suite``'s panels to ``path``; False when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    panels = _PANELS[suite](results)
    if not panels:
        return False
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (kind, args) in zip(axes[0], panels, strict=True):
        if kind == "cdf":
            _cdf(ax, *args)
        elif kind == "bars":
            _bars(ax, *args)
        else:
            title, values = args
            ax.plot(range(1, len(values) + 1), values)
            ax.set_xlabel("simulated s")
            ax.set_ylabel("hit rate")
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
    figure.suptitle(f"starmesh bench {suite}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
