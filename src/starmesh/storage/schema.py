"""The tables, as the code expects them. Alembic's migrations (``migrations/versions``) build
exactly these; a test compares the two on every dialect.

Everything is append-only and keyed by an id the writer knows before it writes (a fill's
order id, a message's id), so a record offered twice is kept once: ``INSERT ... ON CONFLICT
DO NOTHING``. Floats are IEEE doubles on both dialects, so a state rebuilt by replaying the
fills is bit for bit the state the engine had.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    Index,
    MetaData,
    Table,
    Text,
)

__all__ = [
    "TABLES",
    "alerts",
    "checkpoints",
    "equity",
    "fills",
    "metadata",
    "processed_messages",
    "signals",
]

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

fills = Table(
    "fills",
    metadata,
    Column("id", Text, primary_key=True, comment="the fill's id: its order id (fills are whole)"),
    Column("account", Text, nullable=False),
    Column("seq", BigInteger, nullable=False, comment="the order's number in its account"),
    Column("ts_ns", BigInteger, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("quantity", Double, nullable=False),
    Column("price", Double, nullable=False),
    Column("commission", Double, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("signal_id", Text, nullable=True, comment="the signal that led to the order"),
    CheckConstraint("side IN ('buy', 'sell')", name="side"),
    CheckConstraint("quantity > 0", name="quantity"),
    Index(None, "account", "seq"),
    Index(None, "ts_ns"),
)

signals = Table(
    "signals",
    metadata,
    Column("id", Text, primary_key=True, comment="the signal message's id"),
    Column("account", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("quantity", Double, nullable=False),
    Column("target", Double, nullable=True),
    Column("price", Double, nullable=True),
    Column("strategy", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index(None, "ts_ns"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Text, primary_key=True, comment="the alert message's id"),
    Column("ts_ns", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("symbol", Text, nullable=True),
    Column("severity", Text, nullable=False),
    Column("halt", Boolean, nullable=False),
    Column("cleared", Boolean, nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", Text, nullable=False, comment="the alert as sent, JSON"),
    Index(None, "ts_ns"),
)

equity = Table(
    "equity",
    metadata,
    Column("account", Text, primary_key=True),
    Column("ts_ns", BigInteger, primary_key=True),
    Column("cash", Double, nullable=False),
    Column("equity", Double, nullable=False),
    Column("gross_exposure", Double, nullable=False),
    Column("net_exposure", Double, nullable=False),
    Column("realised_pnl", Double, nullable=False),
    Column("unrealised_pnl", Double, nullable=False),
    Column("commissions", Double, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("engine", Text, primary_key=True),
    Column("account", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("state", Text, nullable=False, comment="the engine's state, JSON"),
)

processed_messages = Table(
    "processed_messages",
    metadata,
    Column("consumer", Text, primary_key=True, comment="who handled it"),
    Column("message_id", Text, primary_key=True),
    Column("ts_ns", BigInteger, nullable=False, comment="when the message was published"),
    Index(None, "consumer", "ts_ns"),
)

TABLES = (fills, signals, alerts, equity, checkpoints, processed_messages)
