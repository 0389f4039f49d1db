"""Workers, who drives a study, and what a lease needs to survive a finish cut off half-way.

A study's driver is "server" (launched through the API) or "local" (``hpsearch run``): a server
hands out and reaps the work of its own studies only. Studies that ever had a lease were driven by
a server.

Leases gain the Optuna trial they hold (so a trial nobody holds can be found), the metrics reported
so far, and when their outcome was recorded in the study. Leases finished before this revision had
their outcome recorded in the same request, so they count as applied.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# microseconds on MySQL too (its DATETIME keeps whole seconds unless told): leases expire
# and workers are seen within a second
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hpsearch_studies") as batch:
        batch.add_column(sa.Column("driver", sa.String(16), nullable=False, server_default="local"))
    op.execute(
        "UPDATE hpsearch_studies SET driver = 'server' WHERE id IN "
        "(SELECT study_id FROM hpsearch_leases)"
    )
    with op.batch_alter_table("hpsearch_leases") as batch:
        batch.add_column(sa.Column("trial_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("progress", sa.JSON, nullable=True))
        batch.add_column(sa.Column("applied_at", TIMESTAMP, nullable=True))
        batch.create_index("ix_hpsearch_leases_trial", ["trial_id"])
        batch.create_index("ix_hpsearch_leases_study_stage", ["study_id", "stage"])
    leases = sa.table(
        "hpsearch_leases",
        sa.column("state", sa.String),
        sa.column("claimed_at", sa.DateTime(timezone=True)),
        sa.column("applied_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        leases.update().where(leases.c.state != "active").values(applied_at=leases.c.claimed_at)
    )
    op.create_table(
        "hpsearch_workers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(256), nullable=True),
        sa.Column("devices", sa.JSON, nullable=False),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("lease_id", sa.Integer, nullable=True),
        sa.Column("items_done", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hpsearch_workers")
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        # MySQL's foreign key on study_id uses the (study_id, stage) index since it exists (it
        # dropped the one it had made itself): give the key its own before that one goes
        op.create_index("ix_hpsearch_leases_study", "hpsearch_leases", ["study_id"])
    with op.batch_alter_table("hpsearch_leases") as batch:
        batch.drop_index("ix_hpsearch_leases_study_stage")
        batch.drop_index("ix_hpsearch_leases_trial")
        batch.drop_column("applied_at")
        batch.drop_column("progress")
        batch.drop_column("trial_id")
    with op.batch_alter_table("hpsearch_studies") as batch:
        batch.drop_column("driver")
