"""The ``starmesh`` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from starmesh.__about__ import __version__
from starmesh.bench.loops import LoopName, available_loops, run_on
from starmesh.cli import backtest as backtest_commands
from starmesh.cli import bench as bench_commands
from starmesh.cli import doctor as doctor_commands
from starmesh.cli import errors
from starmesh.cli import hub as hub_commands
from starmesh.cli import ledger as ledger_commands
from starmesh.cli import redis_dev as redis_commands
from starmesh.cli import security as security_commands
from starmesh.cli import sources as sources_commands
from starmesh.cli import up as up_commands
from starmesh.cli.ledger import DatabaseUrlOption, resolve_database_url
from starmesh.cli.options import (
    BusUrlOption,
    MarketdataUrlOption,
    PlatformConfigOption,
    scenario_named,
)
from starmesh.core.enums import EngineType

app = typer.Typer(
    name="starmesh",
    help="The communication layer of a multi-engine trading platform.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's locals would show URLs with their passwords.
    pretty_exceptions_show_locals=False,
)
console = Console()
_debug = False
"""``starmesh --debug``: errors a user can fix keep their traceback."""
bench_commands.register(app, console)
backtest_commands.register(app, console)
up_commands.register(app, console)
redis_commands.register(app, console)
hub_commands.register(app, console)
sources_commands.register(app)
security_commands.register(app, console)
ledger_commands.register(app, console)
doctor_commands.register(app, console)

NoLedgerOption = Annotated[
    bool, typer.Option("--no-ledger", help="Keep no ledger: nothing persists, nothing resumes.")
]
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


def _print_version(asked: bool) -> None:
    if asked:
        console.print(f"starmesh {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def starmesh(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print the installed version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of a failure, not only its cause.")
    ] = False,
) -> None:
    """The communication layer of a multi-engine trading platform."""
    global _debug
    _debug = debug


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(f"starmesh {__version__}")


@app.command()
def run(
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run; default: until Ctrl-C.", min=0.1)
    ] = None,
    rate: Annotated[
        float, typer.Option(help="Simulated quotes per second, all symbols together.", min=1)
    ] = 1_000,
    symbols: Annotated[
        int, typer.Option(help="How many symbols of the simulated universe to trade.", min=1)
    ] = 20,
    source: Annotated[str, typer.Option(help="Market data: simulated or replay.")] = "simulated",
    seed: Annotated[int, typer.Option(help="Seed of the simulated market.")] = 7,
    scenario: Annotated[
        str | None,
        typer.Option(
            help="flash-crash: one symbol falls 8% at once, 5 s in.", callback=scenario_named
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write routes, hub and engine figures as JSON on exit.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Engine Logic Bus (redis://...); default: STARMESH_BUS_URL, else embedded."
        ),
    ] = None,
    marketdata_url: MarketdataUrlOption = None,
    dashboard_port: Annotated[
        int, typer.Option(help="Port of the live dashboard (0: any free one).", min=0, max=65535)
    ] = 8600,
    dashboard: Annotated[bool, typer.Option(help="Serve the live dashboard.")] = True,
    engines: Annotated[
        str | None,
        typer.Option(help="Comma-separated engines to run (default: all but backtesting)."),
    ] = None,
    loop: Annotated[str, typer.Option("--loop", help="Event loop: asyncio or uvloop.")] = "asyncio",
    database_url: DatabaseUrlOption = None,
    no_ledger: NoLedgerOption = False,
) -> None:
    """Run the platform: the MarketData Hub and the engines, in one process, live.

    On the embedded bus (no server), unless --url or STARMESH_BUS_URL names a Redis.
    The first line says which; the display and --report show the quote rate achieved.
    """
    from starmesh.cli.live import run_platform, write_report
    from starmesh.core.enums import EngineType
    from starmesh.marketdata.sources.replay import default_replay_files
    from starmesh.marketdata.sources.simulated import DEFAULT_UNIVERSE
    from starmesh.platform.config import ALL_ENGINES, PlatformConfig
    from starmesh.storage import StorageError

    (chosen,) = _loops(loop, allow_all=False)
    if source not in ("simulated", "replay"):
        raise typer.BadParameter("must be simulated or replay", param_hint="--source")
    if symbols > len(DEFAULT_UNIVERSE):
        raise typer.BadParameter(
            f"the simulated universe has {len(DEFAULT_UNIVERSE)} symbols", param_hint="--symbols"
        )
    universe = list(default_replay_files()) if source == "replay" else DEFAULT_UNIVERSE[:symbols]
    chosen_engines = ALL_ENGINES if engines is None else _engine_list(engines)
    if EngineType.WEBSOCKET not in chosen_engines:
        dashboard = False  # the dashboard is the WebSocket engine's
    try:
        config = PlatformConfig(
            symbols=tuple(universe), source=source, seed=seed,  # type: ignore[arg-type]
            quotes_per_second=rate, scenario=scenario,  # type: ignore[arg-type]
            engines=chosen_engines,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    ledger = None if no_ledger else resolve_database_url(database_url)
    try:
        platform = run_on(
            chosen,
            run_platform(config, duration=duration, console=console, url=url,
                         marketdata_url=marketdata_url, database_url=ledger,
                         dashboard=("127.0.0.1", dashboard_port) if dashboard else None),
        )  # fmt: skip
    except StorageError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    if report is not None:
        write_report(platform, report)
        console.print(f"report written to {report}")


def _engine_list(names: str) -> tuple[EngineType, ...]:
    """``risk,strategy`` as engine types, in the platform's start order; a usage error names
    what is unknown."""
    from starmesh.platform.config import ALL_ENGINES

    asked = [name.strip().lower() for name in names.split(",") if name.strip()]
    known = {engine.value: engine for engine in ALL_ENGINES}
    unknown = [name for name in asked if name not in known]
    if unknown or not asked:
        raise typer.BadParameter(
            f"unknown engines {unknown}; choose among {', '.join(known)}"
            if unknown
            else "name at least one engine",
            param_hint="--engines",
        )
    wanted = {EngineType(name) for name in asked}
    return tuple(engine for engine in ALL_ENGINES if engine in wanted)


@app.command()
def engine(
    name: Annotated[str, typer.Argument(help="The engine: marketdata (the hub), risk, ...")],
    url: BusUrlOption = None,
    marketdata_url: MarketdataUrlOption = None,
    config: PlatformConfigOption = None,
    host: Annotated[str, typer.Option(help="HTTP interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="HTTP port (default: the engine's own; 0: any free one).")
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(help="This instance's name (default: host-pid); keep it across restarts."),
    ] = None,
    loop: Annotated[str, typer.Option("--loop", help="Event loop: asyncio or uvloop.")] = "asyncio",
    database_url: DatabaseUrlOption = None,
    no_ledger: NoLedgerOption = False,
) -> None:
    """Run one engine in this process, on Redis, with /health and /metrics on its port
    (risk, portfolio and strategy with their ledger, resuming from it)."""
    import msgspec

    from starmesh.client.factory import parse_engine
    from starmesh.core.config import Settings
    from starmesh.core.errors import ConfigurationError
    from starmesh.platform.config import PlatformConfig
    from starmesh.platform.engine_process import run_engine_process
    from starmesh.storage import StorageError

    (chosen,) = _loops(loop, allow_all=False)
    try:
        kind = parse_engine(name)
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    settings = Settings()
    url = url or settings.bus_address
    if url is None:
        raise typer.BadParameter(
            "an engine alone needs a server bus: give --url redis://... (or STARMESH_BUS_URL); "
            "`starmesh run` runs every engine in one process on the embedded bus",
            param_hint="--url",
        )
    platform_config = PlatformConfig()
    if config is not None:
        try:
            platform_config = msgspec.json.decode(config.read_bytes(), type=PlatformConfig)
        except (OSError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise typer.BadParameter(f"{config}: {exc}", param_hint="--config") from None
    ledger = None if no_ledger else resolve_database_url(database_url)
    try:
        run_on(
            chosen,
            run_engine_process(
                kind, platform_config, url=url, marketdata_url=marketdata_url,
                settings=settings, host=host, port=port, instance=instance, database_url=ledger,
                announce=lambda line: console.print(line, soft_wrap=True),
            ),
        )  # fmt: skip
    except StorageError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None


def main(argv: Sequence[str] | None = None) -> None:
    """The ``starmesh`` command. A failure a user can fix (no Redis at the URL, a server that
    is not Redis, a bad STARMESH_* value, any StarmeshError) is one line, not a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="starmesh")
    except Exception as error:
        message = None if _debug else errors.explain(error, args, os.environ)
        if message is None:
            raise
        stderr = Console(stderr=True, highlight=False)
        stderr.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
        stderr.print("(starmesh --debug ... shows the traceback)")
        sys.exit(1)
