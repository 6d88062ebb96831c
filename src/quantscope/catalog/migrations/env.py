"""Alembic environment: runs migrations on the connection quantscope hands over."""

from __future__ import annotations

from alembic import context

from quantscope.catalog._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - quantscope always passes a connection
    raise RuntimeError("quantscope migrations run through quantscope.catalog, not the alembic CLI")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
