"""Alembic's entry point for our migrations: run on the connection the caller passed in."""

from __future__ import annotations

from alembic import context

from hpsearch.storage._tables import metadata
from hpsearch.storage.migrations import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them
    include_name=lambda name, kind, parent: kind != "table" or str(name).startswith("hpsearch_"),
)
with context.begin_transaction():
    context.run_migrations()
