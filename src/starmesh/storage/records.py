"""What the ledger keeps, one typed record per row, each checked before it is queued.

A record that is not fit to keep (a NaN price, a zero quantity, an unknown side) raises
:class:`InvalidRecordError` naming the record and the field; nothing of it is written.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import msgspec
from sqlalchemy import Table

from starmesh.storage.errors import InvalidRecordError
from starmesh.storage.schema import alerts, checkpoints, equity, fills, signals

__all__ = [
    "AlertRecord",
    "CheckpointRecord",
    "EquityRecord",
    "FillRecord",
    "Record",
    "SignalRecord",
]


class _Record(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    table: ClassVar[Table]
    what: ClassVar[str]

    ts_ns: int
    """When it happened, UNIX ns of the engine's clock."""

    @property
    def key(self) -> str:
        raise NotImplementedError

    def row(self) -> dict[str, object]:
        return msgspec.structs.asdict(self)

    def _fail(self, problem: str) -> InvalidRecordError:
        return InvalidRecordError(f"{self.what} {self.key!r} refused: {problem}")

    def _finite(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise self._fail(f"{name} must be a finite number, got {value!r}")

    def _text(self, *names: str) -> None:
        for name in names:
            if not getattr(self, name):
                raise self._fail(f"{name} must not be empty")

    def _time(self) -> None:
        if not 0 <= self.ts_ns < 2**63:
            raise self._fail(f"ts_ns must be a UNIX time in ns, got {self.ts_ns!r}")

    def validate(self) -> None:
        """Raise :class:`InvalidRecordError` if the record is not fit to keep."""


class FillRecord(_Record, frozen=True, kw_only=True):
    table = fills
    what = "fill"

    id: str
    account: str
    seq: int
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    commission: float
    order_id: str
    signal_id: str | None = None

    @property
    def key(self) -> str:
        return self.id

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "buy" else -self.quantity

    def validate(self) -> None:
        self._text("id", "account", "symbol", "order_id")
        self._time()
        if self.side not in ("buy", "sell"):
            raise self._fail(f"side must be 'buy' or 'sell', got {self.side!r}")
        self._finite("quantity", "price", "commission")
        if not self.quantity > 0:
            raise self._fail(f"quantity must be positive, got {self.quantity!r}")
        if not self.price > 0:
            raise self._fail(f"price must be positive, got {self.price!r}")
        if self.commission < 0:
            raise self._fail(f"commission must not be negative, got {self.commission!r}")
        if self.seq < 0:
            raise self._fail(f"seq must not be negative, got {self.seq!r}")


class SignalRecord(_Record, frozen=True, kw_only=True):
    table = signals
    what = "signal"

    id: str
    account: str
    symbol: str
    action: str
    quantity: float
    target: float | None = None
    price: float | None = None
    strategy: str = ""
    reason: str = ""

    @property
    def key(self) -> str:
        return self.id

    def validate(self) -> None:
        self._text("id", "account", "symbol", "action")
        self._time()
        self._finite("quantity", "target", "price")
        if self.quantity < 0:
            raise self._fail(f"quantity must not be negative, got {self.quantity!r}")


class AlertRecord(_Record, frozen=True, kw_only=True):
    table = alerts
    what = "alert"

    id: str
    source: str
    rule: str
    symbol: str | None
    severity: str
    halt: bool
    cleared: bool
    message: str
    payload: str
    """The alert as it was sent, JSON."""

    @property
    def key(self) -> str:
        return self.id

    def validate(self) -> None:
        self._text("id", "source", "rule", "severity", "payload")
        self._time()


class EquityRecord(_Record, frozen=True, kw_only=True):
    table = equity
    what = "equity snapshot"

    account: str
    cash: float
    equity: float
    gross_exposure: float
    net_exposure: float
    realised_pnl: float
    unrealised_pnl: float
    commissions: float

    @property
    def key(self) -> str:
        return f"{self.account}@{self.ts_ns}"

    def validate(self) -> None:
        self._text("account")
        self._time()
        self._finite("cash", "equity", "gross_exposure", "net_exposure", "realised_pnl",
                     "unrealised_pnl", "commissions")  # fmt: skip


class CheckpointRecord(_Record, frozen=True, kw_only=True):
    table = checkpoints
    what = "checkpoint"

    engine: str
    account: str
    seq: int
    state: str
    """The engine's state, JSON (the engine owns its shape)."""

    @property
    def key(self) -> str:
        return f"{self.engine}/{self.account}#{self.seq}"

    def validate(self) -> None:
        self._text("engine", "account", "state")
        self._time()


Record = FillRecord | SignalRecord | AlertRecord | EquityRecord | CheckpointRecord
