"""``starmesh up``: the hub and the engines as separate processes over Redis, supervised."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from starmesh.cli.options import BusUrlOption, MarketdataUrlOption, PlatformConfigOption

if TYPE_CHECKING:
    from starmesh.platform.supervisor import Supervisor

__all__ = ["register"]

_COLOURS = ("cyan", "green", "yellow", "magenta", "blue", "bright_red", "bright_green",
            "bright_yellow", "bright_magenta", "bright_cyan", "bright_blue", "white")  # fmt: skip


def parse_instances(values: list[str] | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values or []:
        name, _, count = value.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise typer.BadParameter(f"{value!r}: say engine=count, e.g. strategy=2",
                                     param_hint="--instances")  # fmt: skip
        counts[name.strip().lower()] = int(count)
    return counts


def register(app: typer.Typer, console: Console) -> None:
    @app.command()
    def up(
        url: BusUrlOption = None,
        marketdata_url: MarketdataUrlOption = None,
        engines: Annotated[
            str | None,
            typer.Option(help="Comma-separated engines (default: every engine of the platform)."),
        ] = None,
        instances: Annotated[
            list[str] | None,
            typer.Option(help="engine=count, e.g. strategy=2 (repeatable)."),
        ] = None,
        hub: Annotated[bool, typer.Option(help="Run the MarketData Hub too.")] = True,
        config: PlatformConfigOption = None,
        host: Annotated[str, typer.Option(help="HTTP interface the processes listen on.")] = (
            "127.0.0.1"
        ),
        port_offset: Annotated[
            int, typer.Option(help="Added to every engine's port (a second deployment).", min=0)
        ] = 0,
    ) -> None:
        """Start the hub and the engines as processes of their own, each on its port; restart
        one that dies; Ctrl-C or SIGTERM stops them all cleanly."""
        from starmesh.cli.app import _engine_list
        from starmesh.core.config import Settings
        from starmesh.core.enums import EngineType
        from starmesh.platform.config import ALL_ENGINES
        from starmesh.platform.supervisor import Supervisor, plan_processes

        settings = Settings()
        bus = url or settings.bus_address
        if bus is None:
            raise typer.BadParameter(
                "engines in processes of their own need a server bus: give --url redis://... "
                "(`starmesh redis start` starts one here)",
                param_hint="--url",
            )
        chosen = list(ALL_ENGINES if engines is None else _engine_list(engines))
        if hub and EngineType.MARKETDATA not in chosen:
            chosen.insert(0, EngineType.MARKETDATA)
        counts = parse_instances(instances)
        unknown = sorted(set(counts) - {e.value for e in chosen})
        if unknown:
            raise typer.BadParameter(f"{unknown} are not among the engines started",
                                     param_hint="--instances")  # fmt: skip
        specs = plan_processes(
            chosen, {EngineType(name): n for name, n in counts.items()}, url=bus,
            marketdata_url=marketdata_url, config_path=str(config) if config else None, host=host,
            port_offset=port_offset,
        )  # fmt: skip
        if max(spec.port for spec in specs) > 65_535:
            raise typer.BadParameter("ports above 65535", param_hint="--port-offset")
        colours = {spec.name: _COLOURS[i % len(_COLOURS)] for i, spec in enumerate(specs)}
        width = max(len(spec.name) for spec in specs)

        def show(name: str, line: str) -> None:
            console.print(f"[{colours[name]}]{name:>{width}}[/] | {line}", soft_wrap=True,
                          markup=True, highlight=False)  # fmt: skip

        supervisor = Supervisor(specs, on_line=show)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            interactive = console.is_terminal and sys.stdout.isatty()
            runner = asyncio.create_task(supervisor.run(stop))
            with contextlib.ExitStack() as stack:
                live = stack.enter_context(
                    Live(_table(supervisor), console=console, refresh_per_second=1)
                ) if interactive else None  # fmt: skip
                while not runner.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(runner), 1.0)
                    if live is not None:
                        live.update(_table(supervisor))
            await runner

        console.print(f"starmesh up: {len(specs)} processes on {_shown(bus)}; Ctrl-C stops them")
        asyncio.run(main())
        failed = [c.spec.name for c in supervisor.children if c.state == "failed"]
        console.print(_table(supervisor))
        if failed:
            console.print(f"[red]stopped uncleanly:[/red] {', '.join(failed)}")
            raise typer.Exit(1)


def _shown(url: str) -> str:
    from starmesh.bus.redis import redact_url

    return redact_url(url)


def _table(supervisor: Supervisor) -> Table:
    table = Table(title="processes", title_justify="left")
    for column in ("process", "state", "pid", "port", "restarts", "up s", "exit"):
        table.add_column(column, justify="left" if column in ("process", "state") else "right")
    for child in supervisor.children:
        table.add_row(child.spec.name, child.state, str(child.pid or "-"), str(child.spec.port),
                      str(child.restarts), f"{child.uptime_s:.0f}",
                      "-" if child.last_exit is None else str(child.last_exit))  # fmt: skip
    return table
