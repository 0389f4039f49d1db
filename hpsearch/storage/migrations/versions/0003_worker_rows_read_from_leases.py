"""A worker's current item and its count of finished items are read from the leases.

They were written into the worker's row by every claim and every finish, a write on the path of
each; the leases hold both already. An index on the leases' worker and state serves the reads.

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
        batch.drop_column("items_done")
    with op.batch_alter_table("hpsearch_leases") as batch:
        batch.create_index("ix_hpsearch_leases_worker", ["worker", "state"])


def downgrade() -> None:
    with op.batch_alter_table("hpsearch_leases") as batch:
        batch.drop_index("ix_hpsearch_leases_worker")
    with op.batch_alter_table("hpsearch_workers") as batch:
        batch.add_column(sa.Column("lease_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("items_done", sa.Integer, nullable=False, server_default="0"))
