"""Alembic environment: the caller passes an open connection (see runner.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through runner.upgrade(), which supplies the connection")

context.configure(connection=connection, version_table_schema="public", transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
