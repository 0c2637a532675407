"""``starmesh backtest``: the trading engines over history or a generated day, as fast as the
CPU allows, with a progress bar, a JSON report and a picture."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

__all__ = ["register"]

_DAY_QUOTES = 1_000_000
_TRADING_DAY_S = 23_400.0


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2015-01-31", param_hint=option
        ) from None


def register(app: typer.Typer, console: Console) -> None:
    @app.command()
    def backtest(
        source: Annotated[
            str, typer.Option(help="replay (daily index history) or simulated.")
        ] = "replay",
        start: Annotated[str | None, typer.Option("--from", help="Replay: first day, ISO.")] = None,
        end: Annotated[str | None, typer.Option("--to", help="Replay: last day, ISO.")] = None,
        symbols: Annotated[
            str | None,
            typer.Option(help="Comma-separated symbols (replay: ^GSPC,^IXIC; simulated: 50)."),
        ] = None,
        seed: Annotated[int, typer.Option(help="Simulated: the market's seed.")] = 7,
        duration: Annotated[
            float, typer.Option(help="Simulated: seconds of market (a trading day).", min=1)
        ] = _TRADING_DAY_S,
        rate: Annotated[
            float, typer.Option(help="Simulated: quotes a second, all symbols together.", min=0.01)
        ] = _DAY_QUOTES / _TRADING_DAY_S,
        notional: Annotated[
            float | None,
            typer.Option(help="Strategy's target position in money (default: 40,000 on replay)."),
        ] = None,
        report: Annotated[Path | None, typer.Option(help="Write the report as JSON.")] = None,
        plot: Annotated[
            Path | None, typer.Option(help="Draw equity and drawdown to a PNG.")
        ] = None,
        run_id: Annotated[
            str, typer.Option(help="Name of the run: its messages, its ledger account.")
        ] = "backtest",
        database_url: Annotated[
            str | None,
            typer.Option(
                help="Keep the run's ledger in this database (sqlite+aiosqlite:///runs.db), as "
                "account backtest-<run-id>, and report from it. Default: none (never the live "
                "STARMESH_DATABASE_URL)."
            ),
        ] = None,
    ) -> None:
        """Backtest Strategy, Portfolio, Risk, Collateral, VPIN, Features, ML and Analytics."""
        from starmesh.bench.loops import run_on
        from starmesh.engines.strategy import StrategyConfig
        from starmesh.marketdata.sources.replay import default_replay_files
        from starmesh.marketdata.sources.simulated import DEFAULT_UNIVERSE
        from starmesh.platform.backtest import BacktestLedgerError, metrics_summary, run_backtest
        from starmesh.platform.config import PlatformConfig
        from starmesh.storage import StorageError, parse_database_url

        if source not in ("replay", "simulated"):
            raise typer.BadParameter("must be replay or simulated", param_hint="--source")
        first, last = _date(start, "--from"), _date(end, "--to")
        if first and last and last < first:
            raise typer.BadParameter("--to is before --from", param_hint="--to")
        default = list(default_replay_files()) if source == "replay" else DEFAULT_UNIVERSE[:50]
        chosen = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else default
        if notional is None and source == "replay":
            notional = 40_000.0
        try:
            config = PlatformConfig(
                symbols=tuple(chosen), source=source, seed=seed,  # type: ignore[arg-type]
                quotes_per_second=rate, market_speed=1.0,
                strategy=StrategyConfig(notional=notional),
            )  # fmt: skip
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if database_url is not None:
            try:
                parse_database_url(database_url)
            except StorageError as exc:
                raise typer.BadParameter(str(exc), param_hint="--database-url") from None
        with Progress(
            "[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task(f"backtest {source} {', '.join(chosen[:3])}", total=1.0)
            try:
                result = run_on(
                    "asyncio",
                    run_backtest(config, start=first, end=last, seconds=duration, run_id=run_id,
                                 on_progress=lambda done: bar.update(task, completed=done),
                                 database_url=database_url),
                )  # fmt: skip
            except BacktestLedgerError as exc:
                raise typer.BadParameter(str(exc), param_hint="--run-id") from None
            except StorageError as exc:
                console.print(f"[red]{exc}[/red]", soft_wrap=True)
                raise typer.Exit(1) from None
        metrics = result.metrics
        console.print(
            f"{result.run_id}: {result.events:,} events from {result.start[:10]} to "
            f"{result.end[:10]} in {result.wall_s:.1f} s ({result.events_per_s:,.0f} events/s)"
            f"; {len(result.fills)} fills, {metrics_summary(metrics)}",
            soft_wrap=True,
        )
        if result.ledger is not None:
            console.print(f"ledger: {result.ledger['database']}, account "
                          f"{result.ledger['account']}", soft_wrap=True)  # fmt: skip
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(json.dumps(result.report(), indent=2) + "\n")
            console.print(f"report written to {report}")
        if plot is not None:
            from starmesh.platform.plot import plot_backtest

            plot_backtest(result, plot)
            console.print(f"plot written to {plot}")
