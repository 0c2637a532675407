"""What the ledger says happened: fills, positions, realised P&L and the alert log.

Positions are always the whole ledger's (the sum of its signed quantities per symbol, as of
now); ``since_ns`` limits the fills and alerts counted and the P&L realised to that period.
Realised P&L is the book's (average cost, commissions apart), found by replaying each
account's fills in order through :class:`~starmesh.engines.portfolio.Book`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starmesh.engines.portfolio.book import Book
from starmesh.storage import AlertRecord, FillRecord, Storage

__all__ = ["LedgerSummary", "summarise"]


@dataclass
class LedgerSummary:
    fills: list[FillRecord] = field(default_factory=list)
    """The fills of the period, in order."""
    positions: dict[str, float] = field(default_factory=dict)
    realised_pnl: float = 0.0
    commissions: float = 0.0
    alerts: list[AlertRecord] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "fills": len(self.fills),
            "positions": self.positions,
            "realised_pnl": self.realised_pnl,
            "commissions": self.commissions,
            "alerts": len(self.alerts),
        }


async def summarise(
    storage: Storage, *, since_ns: int | None = None, account: str | None = None
) -> LedgerSummary:
    summary = LedgerSummary(alerts=await storage.alerts(since_ns=since_ns))
    books: dict[str, Book] = {}
    positions: dict[str, float] = {}
    for record in await storage.fills(account=account):
        book = books.setdefault(record.account, Book())
        realised = book.apply(record.symbol, record.signed_quantity, record.price)
        positions[record.symbol] = positions.get(record.symbol, 0.0) + record.signed_quantity
        if since_ns is None or record.ts_ns >= since_ns:
            summary.fills.append(record)
            summary.realised_pnl += realised
            summary.commissions += record.commission
    summary.positions = {s: q for s, q in sorted(positions.items()) if q != 0}
    return summary
