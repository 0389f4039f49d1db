"""Our own tables, beside Optuna's in the same database (the schema at the newest migration).

Optuna keeps trials (params, intermediate values, states, user attributes). We keep what Optuna has
no place for: the study's spec and state, one result row per recipe stage, the leases of work
items handed to workers, and the workers themselves. ``hpsearch.storage.migrations`` creates and
upgrades these tables; a change here needs a migration there (a test compares the two).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# microseconds on MySQL too (its DATETIME keeps whole seconds unless told): leases expire
# and workers are seen within a second
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

metadata = sa.MetaData()

studies = sa.Table(
    "hpsearch_studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # running / stopped / completed / failed
    sa.Column("message", sa.Text, nullable=True),  # why it failed, in words
    # who drives it: "server" (launched through the API; its workers hold leases) or "local"
    # (``hpsearch run``); a server hands out and reaps the work of its own studies only
    sa.Column("driver", sa.String(16), nullable=False, server_default="local"),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused, so a cached id never means another study
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
    sa.Column("started_at", TIMESTAMP, nullable=True),
    sa.Column("finished_at", TIMESTAMP, nullable=True),
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
    sa.Column("claimed_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
    sa.Column("outcome", sa.JSON, nullable=True),  # what the finish (or the reaper) delivered
    sa.Column("trial_id", sa.Integer, nullable=True),  # the Optuna trial of a search trial item
    sa.Column("progress", sa.JSON, nullable=True),  # per-epoch metrics reported so far
    # when the outcome was recorded in the study: NULL while a finished lease still owes that
    # (a finish cut off half-way); whoever sees it so completes the job
    sa.Column("applied_at", TIMESTAMP, nullable=True),
    sa.Index("ix_hpsearch_leases_active", "state", "expires_at"),
    sa.Index("ix_hpsearch_leases_trial", "trial_id"),
    sa.Index("ix_hpsearch_leases_study_stage", "study_id", "stage"),
    # a lease's id is a work item's id in the worker protocol: never reused, or a worker still
    # holding an item of a deleted study would report onto another study's item
    sqlite_autoincrement=True,
)

workers = sa.Table(
    "hpsearch_workers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),  # the worker's own id (host-pid, ...)
    sa.Column("host", sa.String(256), nullable=True),
    sa.Column("devices", sa.JSON, nullable=False),
    sa.Column("first_seen", TIMESTAMP, nullable=False),
    sa.Column("last_seen", TIMESTAMP, nullable=False),
    sa.Column("items_done", sa.Integer, nullable=False, default=0),  # leases it finished
)
