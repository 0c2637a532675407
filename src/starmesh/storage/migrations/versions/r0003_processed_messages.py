"""Processed messages: the ids a consumer committed its effects with, so a copy redelivered
after a crash is skipped (``starmesh.storage.processed``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "processed_messages",
        sa.Column("consumer", sa.Text(), nullable=False, comment="who handled it"),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False,
                  comment="when the message was published"),
        sa.PrimaryKeyConstraint("consumer", "message_id", name=op.f("pk_processed_messages")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_processed_messages_consumer_ts_ns"),
        "processed_messages",
        ["consumer", "ts_ns"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_messages_consumer_ts_ns"), table_name="processed_messages")
    op.drop_table("processed_messages")
