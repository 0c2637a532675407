"""``starmesh hub`` (run the MarketData Hub) and ``starmesh status`` (what it has done)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from starmesh.core.config import Settings

__all__ = ["register"]


def register(app: typer.Typer, console: Console) -> None:
    @app.command()
    def hub(
        sources: Annotated[
            str, typer.Option(help="Comma-separated sources, in order of preference.")
        ] = "simulated,replay",
        url: Annotated[
            str | None, typer.Option(help="Bus URL (default: STARMESH_BUS_URL, else embedded).")
        ] = None,
        marketdata_url: Annotated[
            str | None, typer.Option(help="MarketData Bus URL if not the same server.")
        ] = None,
        host: Annotated[str, typer.Option(help="HTTP interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="HTTP port.")] = 8800,
        http: Annotated[bool, typer.Option(help="Serve /v1/marketdata, /health, /metrics.")] = True,
    ) -> None:
        """Run the MarketData Hub until Ctrl-C (the one process that calls the sources)."""
        asyncio.run(_run_hub(sources, url, marketdata_url, host, port, http, console))

    @app.command()
    def status(
        hub_url: Annotated[
            str | None,
            typer.Option(help="The hub's HTTP address (default: STARMESH_HUB_HTTP_URL)."),
        ] = None,
    ) -> None:
        """Show the hub's health, cache, consolidation and per-source accounting."""
        base = (hub_url or Settings().hub_http_url).rstrip("/")
        try:
            health = httpx.get(f"{base}/health", timeout=5).json()
            stats = httpx.get(f"{base}/v1/stats", timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            console.print(f"[red]hub not reachable at {base}[/red]: {exc}")
            raise typer.Exit(1) from None
        console.print(_summary(base, health, stats))
        console.print(_sources(stats))


async def _run_hub(
    sources: str,
    url: str | None,
    marketdata_url: str | None,
    host: str,
    port: int,
    http: bool,
    console: Console,
) -> None:
    from starmesh.marketdata.factory import create_marketdata_hub
    from starmesh.platform.process import settle_after_startup

    names = [name.strip() for name in sources.split(",") if name.strip()]
    hub = create_marketdata_hub(
        names, url=url, marketdata_url=marketdata_url, port=port, host=host, serve_http=http
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with hub:
        settle_after_startup()
        where = f"http://{host}:{port}" if http else "the bus only"
        console.print(
            f"MarketData Hub up with {', '.join(names)}, serving {where}; Ctrl-C stops it"
        )
        await stop.wait()
    console.print("MarketData Hub stopped")


def _summary(base: str, health: dict[str, Any], stats: dict[str, Any]) -> Table:
    table = Table(title=f"MarketData Hub at {base}: {health['status']}", show_header=False)
    latency = stats.get("distribution_latency") or {}
    rows = [
        ("requests", f"{stats['requests']:,}"),
        ("cache hits / misses", f"{stats['cache_hits']:,} / {stats['cache_misses']:,}"),
        ("hit rate", f"{stats['hit_rate']:.2%}"),
        ("upstream calls", f"{stats['upstream_total']:,}"),
        ("coalesced (single-flight)", f"{stats['coalesced']:,}"),
        ("consolidation", f"{stats['consolidation_ratio']:.2%} of requests with no upstream call"),
        ("stale served", f"{stats['stale_served']:,}"),
        (
            "distribution latency",
            f"p50 {latency.get('p50_us', '-')} µs, p99 {latency.get('p99_us', '-')} µs",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for transport in health.get("transports", []):
        table.add_row(
            transport["transport"], "healthy" if transport["healthy"] else transport["detail"]
        )
    return table


def _sources(stats: dict[str, Any]) -> Table:
    table = Table(title="sources")
    for column in ("source", "state", "breaker", "limit", "upstream", "errors", "waits", "conn."):
        table.add_column(column, no_wrap=column in ("source", "state", "breaker"))
    for name, source in stats["sources"].items():
        table.add_row(
            name, source["state"], source["breaker"], source["limit"],
            f"{source['upstream_calls']:,}", f"{source['errors']:,}",
            f"{source['rate_limit_waits']:,}", str(source["connections"]),
        )  # fmt: skip
    return table
