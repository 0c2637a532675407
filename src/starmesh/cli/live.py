"""``starmesh run``: the platform in one process, with a live view of every route and engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from starmesh.core.config import Settings
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig
from starmesh.platform.process import settle_after_startup
from starmesh.platform.report import flash_crash_outcome, run_report

__all__ = ["run_platform", "write_report"]


def _routes_table(platform: Platform) -> Table:
    table = Table(title="routes (publish -> handler)", title_justify="left", expand=False)
    for column in ("from", "to", "topic"):
        table.add_column(column, no_wrap=True)
    for column in ("msgs", "p50 µs", "p99 µs"):
        table.add_column(column, justify="right", no_wrap=True)
    for route in platform.meter.routes():
        table.add_row(route["from"], route["to"], route["topic"], f"{route['messages']:,}",
                      f"{route['p50_us']:,.0f}", f"{route['p99_us']:,.0f}")  # fmt: skip
    return table


def _engines_table(platform: Platform) -> Table:
    table = Table(title="engines", title_justify="left", expand=False)
    for column in ("engine", "state"):
        table.add_column(column)
    for column in ("in", "out", "err"):
        table.add_column(column, justify="right")
    table.add_column("doing")
    states = platform.states_at_stop or platform.engine_states()
    for kind, engine in platform.engines.items():
        health = engine.health()
        table.add_row(kind.value, states[kind.value], f"{health.messages_in:,}",
                      f"{health.messages_out:,}", str(health.handler_errors),
                      _doing(health.detail))  # fmt: skip
    return table


def _doing(detail: dict[str, object]) -> str:
    """The engine's first few counters."""
    counts = [(k, v) for k, v in detail.items() if isinstance(v, int) and not isinstance(v, bool)]
    return ", ".join(f"{k} {v:,}" for k, v in counts[:4])


def _caption(platform: Platform) -> str:
    target = platform.config.quotes_per_second
    parts = [
        f"quotes {platform.quotes_per_second():,.0f}/s"
        + (f" (asked {target:,.0f})" if platform.config.source == "simulated" else ""),
    ]
    if platform.config.scenario == "flash-crash":
        outcome = flash_crash_outcome(platform)
        if outcome.get("detected"):
            parts.append(f"flash crash {outcome['symbol']}: halted in "
                         f"{outcome['halt_latency_us']} µs")  # fmt: skip
        else:
            parts.append("flash crash: waiting")
    parts.append("Ctrl-C stops cleanly")
    return " · ".join(parts)


def _view(platform: Platform) -> Group:
    header = f"starmesh — {platform.transport()} — {platform.elapsed_s:5.1f} s"
    return Group(header, _routes_table(platform), _engines_table(platform), _caption(platform))


def _summary_line(platform: Platform) -> str:
    parts = [
        f"{kind.value}={health.messages_in}/{health.messages_out}"
        for kind, health in ((k, e.health()) for k, e in platform.engines.items())
    ]
    return (
        f"[{platform.elapsed_s:5.1f}s] quotes {platform.quotes_per_second():,.0f}/s · in/out "
        + " ".join(parts)
    )


async def run_platform(
    config: PlatformConfig,
    *,
    duration: float | None,
    console: Console,
    url: str | None = None,
    marketdata_url: str | None = None,
    settings: Settings | None = None,
    dashboard: tuple[str, int] | None = None,
    database_url: str | None = None,
) -> Platform:
    """Run until ``duration`` elapses or SIGINT/SIGTERM arrives; returns the stopped platform."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    platform = Platform(
        config, url=url, marketdata_url=marketdata_url, settings=settings, dashboard=dashboard,
        database_url=database_url,
    )  # fmt: skip
    console.print(
        f"starmesh run: {len(config.engines)} engines and the MarketData Hub on the "
        f"{platform.transport()}, {len(config.symbols)} symbols from the {config.source} source; "
        f"ledger: {platform.ledger()}",
        soft_wrap=True,
    )
    await platform.start()
    if platform.dashboard_url is not None:
        console.print(f"dashboard: {platform.dashboard_url}", soft_wrap=True)
    settle_after_startup()
    deadline = None if duration is None else time.monotonic() + duration
    interactive = console.is_terminal and sys.stdout.isatty()
    try:
        if interactive:
            with Live(_view(platform), console=console, refresh_per_second=4) as live:
                while not await _wait(stop, deadline, 0.25):
                    live.update(_view(platform))
        else:
            while not await _wait(stop, deadline, 1.0):
                # Not highlighted: rich's highlighter took 0.75 ms a line, all of it on the
                # event loop every engine shares.
                console.print(_summary_line(platform), soft_wrap=True, highlight=False)
    finally:
        await platform.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    console.print(_view(platform))
    return platform


def write_report(platform: Platform, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_report(platform), indent=2) + "\n")


async def _wait(stop: asyncio.Event, deadline: float | None, step: float) -> bool:
    """Wait up to ``step`` seconds; True once it is time to stop."""
    timeout = step if deadline is None else max(0.0, min(step, deadline - time.monotonic()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)
