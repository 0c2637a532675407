"""Alembic's environment: migrations run on the connection ``starmesh.storage.migrate`` hands
over (``starmesh db upgrade``), never on a URL of their own."""

from __future__ import annotations

from alembic import context

from starmesh.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with `starmesh db upgrade [--database-url URL]`")
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
