"""The ledger: fills, the signals that led to orders, the alert log, equity snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "fills",
        sa.Column("id", sa.Text(), nullable=False,
                  comment="the fill's id: its order id (fills are whole)"),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False,
                  comment="the order's number in its account"),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("commission", sa.Double(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("signal_id", sa.Text(), nullable=True,
                  comment="the signal that led to the order"),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_fills_side")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_fills_quantity")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
    )  # fmt: skip
    op.create_index(op.f("ix_fills_account_seq"), "fills", ["account", "seq"])
    op.create_index(op.f("ix_fills_ts_ns"), "fills", ["ts_ns"])
    op.create_table(
        "signals",
        sa.Column("id", sa.Text(), nullable=False, comment="the signal message's id"),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("target", sa.Double(), nullable=True),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
    )
    op.create_index(op.f("ix_signals_ts_ns"), "signals", ["ts_ns"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Text(), nullable=False, comment="the alert message's id"),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("halt", sa.Boolean(), nullable=False),
        sa.Column("cleared", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False, comment="the alert as sent, JSON"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_ts_ns"), "alerts", ["ts_ns"])
    op.create_table(
        "equity",
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("cash", sa.Double(), nullable=False),
        sa.Column("equity", sa.Double(), nullable=False),
        sa.Column("gross_exposure", sa.Double(), nullable=False),
        sa.Column("net_exposure", sa.Double(), nullable=False),
        sa.Column("realised_pnl", sa.Double(), nullable=False),
        sa.Column("unrealised_pnl", sa.Double(), nullable=False),
        sa.Column("commissions", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("account", "ts_ns", name=op.f("pk_equity")),
    )


def downgrade() -> None:
    op.drop_table("equity")
    op.drop_index(op.f("ix_alerts_ts_ns"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_signals_ts_ns"), table_name="signals")
    op.drop_table("signals")
    op.drop_index(op.f("ix_fills_ts_ns"), table_name="fills")
    op.drop_index(op.f("ix_fills_account_seq"), table_name="fills")
    op.drop_table("fills")
