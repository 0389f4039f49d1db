"""Scheduling for remote workers: claims under leases, reports, finishes, the reaper, and the
registry of workers."""

from hpsearch.scheduling._leases import LeaseBook, LeaseHeldError, LeaseNotFoundError, LeaseRow
from hpsearch.scheduling._scheduler import (
    LEASE_EXPIRED,
    ORPHANED,
    Lease,
    Scheduler,
    database_unavailable,
)
from hpsearch.scheduling._workers import WorkerBook

__all__ = [
    "LEASE_EXPIRED",
    "ORPHANED",
    "Lease",
    "LeaseBook",
    "LeaseHeldError",
    "LeaseNotFoundError",
    "LeaseRow",
    "Scheduler",
    "WorkerBook",
    "database_unavailable",
]
