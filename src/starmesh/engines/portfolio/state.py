"""Portfolio's state in the ledger: its fills, the signals that led to its orders, equity
snapshots, and the checkpoint it resumes against.

On restart the book is *rebuilt from the fills*, replayed in the order they were made through
the same arithmetic the broker used (:meth:`PaperBroker.book_fill`), so positions, average
costs, cash and commissions come back bit for bit. The last checkpoint is the check: when the
replay has applied as many fills as the checkpoint had, the two must agree exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from starmesh.core.payloads import Fill, PortfolioBalance, TradingSignal
from starmesh.engines.portfolio.broker import PaperBroker
from starmesh.storage import (
    CheckpointRecord,
    EquityRecord,
    FillRecord,
    LedgerMismatchError,
    SignalRecord,
)

__all__ = [
    "PortfolioState",
    "PositionState",
    "equity_record",
    "fill_record",
    "order_number",
    "rebuild",
    "signal_record",
    "state_of",
]

_ORDER_NUMBER = re.compile(r"-(\d+)$")


class PositionState(msgspec.Struct, frozen=True, array_like=True):
    quantity: float
    avg_cost: float
    realised_pnl: float


class PortfolioState(msgspec.Struct, frozen=True, kw_only=True):
    """The book at a checkpoint, and how far into the ledger it is."""

    starting_cash: float
    cash: float
    commissions: float
    fills: int
    """Fills booked: the ledger's fills up to this many make this book."""
    orders: int
    """Order numbers used (refused orders use one too)."""
    positions: dict[str, PositionState]


def state_of(broker: PaperBroker, orders: int) -> PortfolioState:
    return PortfolioState(
        starting_cash=broker.starting_cash,
        cash=broker.cash,
        commissions=broker.commissions,
        fills=broker.fills,
        orders=orders,
        positions={
            s: PositionState(p.quantity, p.avg_cost, p.realised_pnl)
            for s, p in broker.positions.items()
        },
    )


def rebuild(
    broker: PaperBroker, fills: Sequence[FillRecord], checkpoint: CheckpointRecord | None
) -> PortfolioState | None:
    """Book ``fills`` (in order) on a fresh ``broker``; check the book against the checkpoint
    when it covers the same fills. Returns the checkpoint's state. Raises
    :class:`LedgerMismatchError` when they disagree: trading on either would be a guess.
    """
    state = None
    if checkpoint is not None:
        state = msgspec.json.decode(checkpoint.state, type=PortfolioState)
        if state.fills > len(fills):
            raise LedgerMismatchError(
                f"portfolio checkpoint {checkpoint.seq} covers {state.fills} fills but the "
                f"ledger holds {len(fills)} for this account: the ledger is missing fills"
            )
    for index, record in enumerate(fills):
        if state is not None and index == state.fills:
            _check(broker, state, checkpoint)
        broker.book_fill(record.symbol, record.signed_quantity, record.price, record.commission)
    if state is not None and state.fills == len(fills):
        _check(broker, state, checkpoint)
    return state


def _check(broker: PaperBroker, state: PortfolioState, checkpoint: CheckpointRecord | None) -> None:
    rebuilt = state_of(broker, state.orders)
    if rebuilt != state:
        raise LedgerMismatchError(
            f"the book rebuilt from the ledger's first {state.fills} fills is not the one "
            f"portfolio checkpoint {checkpoint.seq if checkpoint else '?'} recorded: "
            f"rebuilt {msgspec.json.encode(rebuilt).decode()}, "
            f"checkpoint {msgspec.json.encode(state).decode()}"
        )


def order_number(order_id: str) -> int:
    """The number at the end of an order id (``paper-00000042`` -> 42), 0 if none."""
    match = _ORDER_NUMBER.search(order_id)
    return int(match.group(1)) if match else 0


# --- records -----------------------------------------------------------------------------------


def fill_record(
    fill: Fill, *, account: str, seq: int, ts_ns: int, signal_id: str | None
) -> FillRecord:
    return FillRecord(
        id=fill.order_id, account=account, seq=seq, ts_ns=ts_ns, symbol=fill.symbol,
        side="buy" if fill.side == "BUY" else "sell", quantity=fill.quantity,
        price=fill.price, commission=fill.fee, order_id=fill.order_id, signal_id=signal_id,
    )  # fmt: skip


def signal_record(
    signal: TradingSignal, *, message_id: str, account: str, ts_ns: int
) -> SignalRecord:
    return SignalRecord(
        id=message_id, account=account, ts_ns=ts_ns, symbol=signal.symbol,
        action=signal.action, quantity=signal.quantity, target=signal.target,
        price=signal.price, strategy=signal.strategy, reason=signal.reason,
    )  # fmt: skip


def equity_record(balance: PortfolioBalance, ts_ns: int) -> EquityRecord:
    return EquityRecord(
        account=balance.account, ts_ns=ts_ns, cash=balance.cash, equity=balance.equity,
        gross_exposure=balance.gross_exposure, net_exposure=balance.net_exposure,
        realised_pnl=balance.realised_pnl, unrealised_pnl=balance.unrealised_pnl,
        commissions=balance.commissions,
    )  # fmt: skip
