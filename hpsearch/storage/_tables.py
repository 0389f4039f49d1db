"""Our own tables, beside Optuna's in the same database.

Optuna keeps trials (params, intermediate values, states, user attributes). We keep what Optuna has
no place for: the study's spec and state, and one result row per recipe stage.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

studies = sa.Table(
    "hpsearch_studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # running / stopped / completed / failed
    sa.Column("message", sa.Text, nullable=True),  # why it failed, in words
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

stages = sa.Table(
    "hpsearch_stages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "study_id",
        sa.Integer,
        sa.ForeignKey("hpsearch_studies.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(32), nullable=False),  # sanity, range_test, coarse, refine-1, ...
    sa.Column("position", sa.Integer, nullable=False),
    # pending / running / passed / failed / skipped / completed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("trial_epochs", sa.Float, nullable=False, default=0.0),
    sa.Column("seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("result", sa.JSON, nullable=False),  # numbers, verdicts, curves
    sa.UniqueConstraint("study_id", "name", name="uq_hpsearch_stage"),
)

leases = sa.Table(
    "hpsearch_leases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # the work item's id in the worker protocol
    sa.Column(
        "study_id",
        sa.Integer,
        sa.ForeignKey("hpsearch_studies.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("item", sa.JSON, nullable=False),  # the WorkItem handed out
    sa.Column("worker", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # active / finished / expired
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.JSON, nullable=True),  # what the finish delivered
    sa.Index("ix_hpsearch_leases_active", "state", "expires_at"),
)
