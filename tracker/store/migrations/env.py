"""Alembic environment: run with the connection the store hands over (see tracker.store.sql.migrate)."""
from alembic import context

from tracker.store.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through tracker.store.sql.migrate(), which supplies the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
