"""A worker's current item is read from the leases.

It was written into the worker's row by every claim (and cleared by every finish), a write on the
path of each; the active leases hold it already.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hpsearch_workers") as batch:
        batch.drop_column("lease_id")


def downgrade() -> None:
    with op.batch_alter_table("hpsearch_workers") as batch:
        batch.add_column(sa.Column("lease_id", sa.Integer, nullable=True))
    op.execute(  # each worker's newest active lease, as this revision reads it
        "UPDATE hpsearch_workers SET lease_id = (SELECT max(id) FROM hpsearch_leases "
        "WHERE hpsearch_leases.worker = hpsearch_workers.id AND state = 'active')"
    )
