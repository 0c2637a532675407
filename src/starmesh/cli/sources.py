"""``starmesh sources``: every market-data source, its state, its limit and its usage.

The static columns come from building each source from the settings (its ``status()`` and
declared limit; nothing is fetched). The usage columns come from the running hub's
``GET /v1/stats``; when the hub cannot be reached, the table says so and shows the rest.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Final, Literal

import httpx
import msgspec
import typer
from rich.console import Console
from rich.markup import escape

from starmesh.cli.tables import ResultTable, to_terminal
from starmesh.core.clock import MonotonicClock
from starmesh.core.config import Settings
from starmesh.marketdata.source import RateLimit, SourceStatus
from starmesh.marketdata.sources import SOURCE_FACTORIES

__all__ = ["HubSourceStats", "details_table", "fetch_hub_stats", "register"]

STATS_TIMEOUT_S: Final = 3.0


class HubSourceStats(msgspec.Struct, frozen=True):
    """What the hub reports about one source in ``/v1/stats``."""

    upstream_calls: int = 0
    errors: int = 0
    breaker: Literal["closed", "open", "half_open"] = "closed"
    connections: int = 0


class _HubStats(msgspec.Struct, frozen=True):
    sources: dict[str, HubSourceStats]


async def fetch_hub_stats(url: str) -> dict[str, HubSourceStats] | str:
    """The hub's per-source stats, or why they could not be read."""
    stats_url = f"{url.rstrip('/')}/v1/stats"
    try:
        async with httpx.AsyncClient(timeout=STATS_TIMEOUT_S) as client:
            response = await client.get(stats_url)
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=_HubStats).sources
    except httpx.HTTPError as exc:
        return f"hub not reachable at {url} ({type(exc).__name__})"
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"hub not reachable at {url} (unexpected /v1/stats answer: {exc})"


async def _statuses(settings: Settings) -> list[tuple[SourceStatus, RateLimit]]:
    rows = []
    clock = MonotonicClock()
    for factory in SOURCE_FACTORIES.values():
        source = factory(settings, clock)
        try:
            rows.append((source.status(), source.rate_limit))
        finally:
            await source.aclose()
    return rows


def _table(
    rows: list[tuple[SourceStatus, RateLimit]], stats: dict[str, HubSourceStats] | None
) -> ResultTable:
    columns = ["source", "state", "limit"]
    if stats is not None:
        columns += ["calls", "errors", "breaker", "conns"]
    table = ResultTable("starmesh sources", columns)
    for status, limit in rows:
        state: str = status.state
        usage: list[str] = []
        if stats is not None:
            seen = stats.get(status.name)
            if seen is None:
                usage = ["-", "-", "-", "-"]
            else:
                state = "open" if seen.breaker == "open" else state
                usage = [f"{seen.upstream_calls:,}", f"{seen.errors:,}", seen.breaker,
                         str(seen.connections)]  # fmt: skip
        style = {"configured": "green", "unconfigured": "yellow", "open": "red"}[state]
        table.rows.append([status.name, f"[{style}]{state}[/]", str(limit), *usage])
    return table


def details_table(title: str, details: list[tuple[str, str]]) -> ResultTable:
    """What each source needs or uses, below the figures: a column of its own would be
    squeezed to nothing beside them on an 80-column terminal."""
    return ResultTable(
        title, ["source", "detail"], [[name, escape(text)] for name, text in details]
    )


def register(app: typer.Typer) -> None:
    """Add ``sources`` to the ``starmesh`` command line."""

    @app.command("sources")
    def sources(
        hub_url: Annotated[
            str | None, typer.Option(help="The hub's HTTP URL (default: STARMESH_HUB_HTTP_URL).")
        ] = None,
    ) -> None:
        """List the market-data sources: state, declared limit and usage seen by the hub."""
        settings = Settings()
        url = hub_url or settings.hub_http_url

        async def gather() -> tuple[
            list[tuple[SourceStatus, RateLimit]], dict[str, HubSourceStats] | str
        ]:
            return await _statuses(settings), await fetch_hub_stats(url)

        rows, stats = asyncio.run(gather())
        console = Console()
        console.print(to_terminal(_table(rows, stats if isinstance(stats, dict) else None)))
        details = [(status.name, status.detail) for status, _ in rows if status.detail]
        console.print(to_terminal(details_table("what each source needs or uses", details)))
        if isinstance(stats, str):
            console.print(stats, markup=False)
