"""``starmesh hub`` (run the MarketData Hub) and ``starmesh status`` (what it has done)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from starmesh.cli.sources import details_table
from starmesh.cli.tables import ResultTable, to_terminal
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
        engine: Annotated[
            list[str] | None,
            typer.Option(help="An engine's HTTP address: show its /health too (repeatable)."),
        ] = None,
        url: Annotated[
            str | None,
            typer.Option(
                help="A deployment's bus (redis://..., redis+cluster://...): every engine it knows."
            ),
        ] = None,
        marketdata_url: Annotated[
            str | None,
            typer.Option(help="With --url: the MarketData Bus, if another server (its hubs)."),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="With --url: print the engines as JSON.")
        ] = False,
    ) -> None:
        """Show the hub's health, cache, sources and failover paths (and --engine ones).

        Cache hits, consolidation, upstream calls per source, what a source lacks.
        Each failover path's state and latencies; the route, outbox and dead letters.
        With --url, every engine of the deployment instead: state, instances,
        heartbeat, port and bus paths, from the registry and each instance's /health.
        """
        settings = Settings()
        if url is not None:
            _deployment_status(url, marketdata_url, settings, as_json, console)
            return
        headers = _auth_headers(settings)
        base = (hub_url or settings.hub_http_url).rstrip("/")
        try:
            health = httpx.get(f"{base}/health", timeout=5, headers=headers).json()
            stats = httpx.get(f"{base}/v1/stats", timeout=5, headers=headers).json()
        except (httpx.HTTPError, ValueError) as exc:
            console.print(f"[red]hub not reachable at {base}[/red]: {exc}")
            raise typer.Exit(1) from None
        for table in [_summary(base, health, stats), *_sources(stats),
                      *failover_table(f"hub at {base}", health)]:  # fmt: skip
            console.print(to_terminal(table))
        unreachable = False
        for url in engine or []:
            try:
                report = httpx.get(f"{url.rstrip('/')}/health", timeout=5, headers=headers).json()
            except (httpx.HTTPError, ValueError) as exc:
                console.print(f"[red]engine not reachable at {url}[/red]: {exc}")
                unreachable = True
                continue
            title = f"{report.get('engine', 'engine')} at {url}"
            for table in failover_table(title, report):
                console.print(to_terminal(table))
        if unreachable:
            raise typer.Exit(1)


def _deployment_status(
    url: str, marketdata_url: str | None, settings: Settings, as_json: bool, console: Console
) -> None:
    from redis.exceptions import RedisClusterException

    from starmesh.bus.redis import redact_url
    from starmesh.cli.platform_status import gather_status, status_table
    from starmesh.core.errors import ConfigurationError

    token = settings.http_token.get_secret_value() if settings.http_token else None
    try:
        status = asyncio.run(gather_status(url, settings, token, marketdata_url))
    except (OSError, ConnectionError, TimeoutError, RedisClusterException) as exc:
        console.print(f"[red]no bus at {redact_url(url)}[/red]: {exc}")
        raise typer.Exit(1) from None
    except ConfigurationError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(json.dumps(status))
        return
    console.print(status_table(status, redact_url(url)))


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
        role = " on standby (another hub holds the lease)" if hub.standby else ""
        console.print(
            f"MarketData Hub up{role} with {', '.join(names)}, serving {where}; Ctrl-C stops it"
        )
        await stop.wait()
    console.print("MarketData Hub stopped")


def _summary(base: str, health: dict[str, Any], stats: dict[str, Any]) -> ResultTable:
    latency = stats.get("distribution_latency") or {}
    table = ResultTable(f"MarketData Hub at {base}: {health['status']}", ["hub", "figure"])
    table.rows += [
        ["requests", f"{stats['requests']:,}"],
        ["cache hits / misses", f"{stats['cache_hits']:,} / {stats['cache_misses']:,}"],
        ["hit rate", f"{stats['hit_rate']:.2%}"],
        ["upstream calls", f"{stats['upstream_total']:,}"],
        ["coalesced (single-flight)", f"{stats['coalesced']:,}"],
        ["consolidation", f"{stats['consolidation_ratio']:.2%} of requests with no upstream call"],
        ["stale served", f"{stats['stale_served']:,}"],
        ["distribution latency",
         f"p50 {latency.get('p50_us', '-')} µs, p99 {latency.get('p99_us', '-')} µs"],
    ]  # fmt: skip
    for transport in health.get("transports", []):
        table.rows.append(
            [transport["transport"], "healthy" if transport["healthy"] else transport["detail"]]
        )
    return table


def _sources(stats: dict[str, Any]) -> list[ResultTable]:
    """The sources' figures, then what an unconfigured one needs (which variable to set)."""
    columns = ["source", "state", "limit", "calls", "errors", "waits", "conns"]
    table = ResultTable("sources", columns)
    missing: list[tuple[str, str]] = []
    for name, source in stats["sources"].items():
        # An open or probing breaker says more than "configured" (as `starmesh sources` shows).
        state = source["state"] if source["breaker"] == "closed" else source["breaker"]
        table.rows.append([
            name, state, source["limit"], f"{source['upstream_calls']:,}",
            f"{source['errors']:,}", f"{source['rate_limit_waits']:,}", str(source["connections"]),
        ])  # fmt: skip
        if source["state"] == "unconfigured":
            missing.append((name, source.get("detail", "")))
    return [table, details_table("unconfigured sources", missing)] if missing else [table]


def _auth_headers(settings: Settings) -> dict[str, str]:
    token = settings.http_token
    return {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}


def failover_table(title: str, health: dict[str, Any]) -> list[ResultTable]:
    """The failover block of a /health report: route, outbox, dead letters, each path, then
    each path's last error (a column of its own would be cut on an 80-column terminal)."""
    failover = health.get("failover") or {}
    outbox = failover.get("outbox") or {}
    dead = health.get("dead_letters")
    table = ResultTable(
        f"{title}: {health.get('status', '?')}",
        ["path", "state", "for s", "switches", "errors", "last min", "p50 ms", "p99 ms"],
        note=f"route {failover.get('route', 'bus')} · outbox {outbox.get('depth', 0):,} · "
        f"dead letters {'?' if dead is None else dead}",
    )
    paths = dict(failover.get("paths") or {})
    peers = (paths.get("http") or {}).get("peers") or {}
    rows = [*paths.items(), *((f"http:{name}", report) for name, report in peers.items())]
    errors: list[tuple[str, str]] = []
    for name, path in rows:
        latency = path.get("latency_last_minute") or {}
        table.rows.append([
            name, path["state"], f"{path['for_s']:.1f}", str(path["switches"]),
            str(path["errors"]), str(path["errors_last_minute"]),
            str(latency.get("p50_ms", "-")), str(latency.get("p99_ms", "-")),
        ])  # fmt: skip
        if path.get("last_error"):
            errors.append((name, path["last_error"]))
    if not errors:
        return [table]
    last = ResultTable("last error of each path", ["path", "error"])
    last.rows += [[name, escape(error)] for name, error in errors]
    return [table, last]
