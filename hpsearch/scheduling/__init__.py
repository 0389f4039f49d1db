"""Scheduling for remote workers: claims under leases, reports, finishes, the reaper, and the
registry of workers."""

from hpsearch.scheduling._leases import LeaseBook, LeaseNotFoundError, LeaseRow
from hpsearch.scheduling._scheduler import LEASE_EXPIRED, ORPHANED, Lease, Scheduler
from hpsearch.scheduling._workers import WorkerBook

__all__ = [
    "LEASE_EXPIRED",
    "ORPHANED",
    "Lease",
    "LeaseBook",
    "LeaseNotFoundError",
    "LeaseRow",
    "Scheduler",
    "WorkerBook",
]
