"""``starmesh db upgrade`` and ``starmesh ledger``: the schema, and what the ledger holds.

SQLAlchemy and Alembic are imported when a command needs them, not at every ``starmesh``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from starmesh.core.config import Settings

if TYPE_CHECKING:
    from starmesh.platform.history import LedgerSummary

__all__ = ["DatabaseUrlOption", "parse_since", "register", "resolve_database_url"]

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="The ledger: sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db; "
        "default: STARMESH_DATABASE_URL, else ledger.db in STARMESH_DATA_DIR (.starmesh).",
    ),
]
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def resolve_database_url(explicit: str | None) -> str:
    """The URL to use; a usage error if it names nothing starmesh can use."""
    from starmesh.storage import DatabaseUrlError, database_url, parse_database_url

    url = database_url(explicit, Settings())
    try:
        parse_database_url(url)
    except DatabaseUrlError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from None
    return url


def parse_since(text: str, now_s: float | None = None) -> int:
    """``2026-01-06``, ``2026-01-06T14:30`` (UTC unless it says) or ``90s``/``15m``/``2h``/``3d``
    ago, as UNIX ns."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        now = time.time() if now_s is None else now_s
        return round((now - float(relative.group(1)) * _UNIT_S[relative.group(2)]) * 1e9)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a date/time (2026-01-06T14:30) nor an age (15m, 2h, 3d)",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1e9)


def register(app: typer.Typer, console: Console) -> None:
    db = typer.Typer(help="The ledger's database schema.", no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("upgrade")
    def db_upgrade(url: DatabaseUrlOption = None) -> None:
        """Bring the ledger's schema up to this starmesh's (creates it in an empty database)."""
        from starmesh.storage import StorageError, redact

        resolved = resolve_database_url(url)
        try:
            before, after = asyncio.run(_upgrade(resolved))
        except StorageError as exc:
            console.print(f"[red]{exc}[/red]", soft_wrap=True)
            raise typer.Exit(1) from None
        shown = redact(resolved)
        if before == after:
            console.print(f"{shown}: schema already at {after}", soft_wrap=True)
        else:
            console.print(f"{shown}: schema {before or 'empty'} -> {after}", soft_wrap=True)

    @app.command()
    def ledger(
        url: DatabaseUrlOption = None,
        since: Annotated[
            str | None, typer.Option(help="Only fills and alerts since: 2026-01-06T14:30 or 2h.")
        ] = None,
        account: Annotated[str | None, typer.Option(help="Only this account's fills.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
        limit: Annotated[int, typer.Option(help="Rows of fills and alerts shown.", min=0)] = 20,
    ) -> None:
        """Fills, positions, realised P&L and the alert log, from the ledger."""
        from starmesh.storage import StorageError

        resolved = resolve_database_url(url)
        since_ns = None if since is None else parse_since(since)
        try:
            summary = asyncio.run(_summary(resolved, since_ns, account))
        except StorageError as exc:
            console.print(f"[red]{exc}[/red]", soft_wrap=True)
            raise typer.Exit(1) from None
        if as_json:
            typer.echo(json.dumps(summary.as_json()))
        else:
            _show(console, summary, limit)


async def _upgrade(url: str) -> tuple[str | None, str | None]:
    from sqlalchemy.exc import DBAPIError

    from starmesh.storage import Database, StorageError, upgrade

    database = Database(url)
    try:
        return await upgrade(database)
    except (OSError, DBAPIError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StorageError(f"cannot upgrade {database.shown}: {reason}") from None
    finally:
        await database.dispose()


async def _summary(url: str, since_ns: int | None, account: str | None) -> LedgerSummary:
    from starmesh.platform.history import summarise
    from starmesh.storage import Storage

    storage = await Storage.open(url, create=False)
    try:
        return await summarise(storage, since_ns=since_ns, account=account)
    finally:
        await storage.close()


def _when(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%m-%d %H:%M:%S.%f")[:-3]


def _show(console: Console, summary: LedgerSummary, limit: int) -> None:
    fills = Table(title=f"fills: {len(summary.fills):,} (the last {limit} shown)",
                  title_justify="left")  # fmt: skip
    for column in ("time (UTC)", "id", "symbol", "side"):
        fills.add_column(column, no_wrap=True)
    for column in ("quantity", "price", "commission"):
        fills.add_column(column, justify="right")
    for f in summary.fills[-limit:] if limit else []:
        fills.add_row(_when(f.ts_ns), f.id, f.symbol, f.side, f"{f.quantity:,g}",
                      f"{f.price:,.4f}", f"{f.commission:,.2f}")  # fmt: skip
    positions = Table(title="positions", title_justify="left")
    positions.add_column("symbol")
    positions.add_column("quantity", justify="right")
    for symbol, quantity in summary.positions.items():
        positions.add_row(symbol, f"{quantity:,g}")
    alerts = Table(title=f"alerts: {len(summary.alerts):,} (the last {limit} shown)",
                   title_justify="left")  # fmt: skip
    for column in ("time (UTC)", "rule", "symbol", "severity", "halt", "message"):
        alerts.add_column(column)
    for a in summary.alerts[-limit:] if limit else []:
        state = "cleared" if a.cleared else ("halt" if a.halt else "")
        alerts.add_row(_when(a.ts_ns), a.rule, a.symbol or "", a.severity, state, a.message)
    console.print(fills, positions, alerts)
    console.print(f"realised P&L {summary.realised_pnl:,.2f} · commissions "
                  f"{summary.commissions:,.2f}")  # fmt: skip
