"""Scheduling: claims under leases, reports, finishes, the reaper, the registry of workers, and
the local driver that runs a study on this machine through the same scheduler."""

from hpsearch.scheduling._leases import LeaseBook, LeaseHeldError, LeaseNotFoundError, LeaseRow
from hpsearch.scheduling._local import open_study, run_search
from hpsearch.scheduling._reaper import LEASE_EXPIRED, ORPHANED
from hpsearch.scheduling._scheduler import Lease, Scheduler, database_unavailable
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
    "open_study",
    "run_search",
]
