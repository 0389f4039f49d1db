"""Lease ids are never reused on SQLite.

A lease's id is the work item's id in the worker protocol. SQLite gives a new row the largest id
plus one unless the table is declared AUTOINCREMENT, so once a study was deleted (its leases with
it), a worker still holding lease 8 of that study reported and finished onto lease 8 of another.
The table is rebuilt with AUTOINCREMENT (SQLite then keeps the largest id it ever handed out);
PostgreSQL's sequences never go back, so there nothing changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "hpsearch_leases", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "hpsearch_leases", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
