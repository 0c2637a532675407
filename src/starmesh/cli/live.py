"""``starmesh run``: the demo platform with a live view of what each engine does."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from starmesh.platform.demo import Demo
from starmesh.platform.process import settle_after_startup

__all__ = ["run_demo"]


def _table(demo: Demo, elapsed: float) -> Table:
    table = Table(title=f"starmesh — embedded bus — {elapsed:5.1f} s", expand=False)
    for column in ("engine", "received", "published", "failures", "activity", "latest"):
        table.add_column(column, overflow="fold")
    total_received = 0
    for activity in demo.activity.values():
        stats = activity.client.stats()
        total_received += stats["received"]
        events = ", ".join(f"{k} {v:,}" for k, v in sorted(activity.events.items()))
        table.add_row(
            activity.engine.value,
            f"{stats['received']:,}",
            f"{stats['published']:,}",
            str(stats["handler_failures"]),
            events,
            activity.last,
        )
    hub = ""
    if demo.hub is not None:
        stats = demo.hub.stats()
        hub = (
            f"hub: {stats['distributed']:,} updates distributed, {stats['requests']:,} requests, "
            f"{stats['upstream_total']:,} upstream calls · "
        )
    table.caption = (
        f"{hub}{total_received / max(elapsed, 1e-9):,.0f} deliveries/s · Ctrl-C stops cleanly"
    )
    return table


def _summary_line(demo: Demo, elapsed: float) -> str:
    parts = [
        f"{a.engine.value}={a.client.stats()['received']}/{a.client.stats()['published']}"
        for a in demo.activity.values()
    ]
    return f"[{elapsed:5.1f}s] received/published " + " ".join(parts)


async def run_demo(duration: float | None, quotes_per_second: float, console: Console) -> Demo:
    """Run until ``duration`` elapses or SIGINT/SIGTERM arrives; returns the stopped demo."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    demo = Demo(quotes_per_second=quotes_per_second)
    await demo.start()
    settle_after_startup()
    started = time.monotonic()
    deadline = None if duration is None else started + duration
    interactive = console.is_terminal and sys.stdout.isatty()
    try:
        if interactive:
            with Live(_table(demo, 0.0), console=console, refresh_per_second=4) as live:
                while not await _wait(stop, deadline, 0.25):
                    live.update(_table(demo, time.monotonic() - started))
        else:
            while not await _wait(stop, deadline, 1.0):
                console.print(_summary_line(demo, time.monotonic() - started), soft_wrap=True)
    finally:
        await demo.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    console.print(_table(demo, time.monotonic() - started))
    return demo


async def _wait(stop: asyncio.Event, deadline: float | None, step: float) -> bool:
    """Wait up to ``step`` seconds; True once it is time to stop."""
    timeout = step if deadline is None else max(0.0, min(step, deadline - time.monotonic()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)
