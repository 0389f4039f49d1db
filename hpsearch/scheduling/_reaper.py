"""Work whose worker went away: the reaper, and a local run taking over after its own crash.

One way of recovering, for every driver. A lease that runs out (no report or heartbeat for a
lease period) is closed as expired, with a retryable failure as its outcome, and that outcome is
applied like any other: a trial's parameters are queued again (bounded), a single stage is
reopened (bounded too). A claim cut off between making its work and writing its lease leaves
work that no lease holds; once older than a lease period it is failed and retried the same way.
A closed lease whose outcome was never recorded (a finish cut off half-way) is recorded.

A server that was down could not hear heartbeats, so for one lease period after it starts it
reaps nothing: workers that kept training meanwhile get the chance to report back.

The local runner (``hpsearch run``) is its study's only driver: when it starts again after a
crash it need not wait for leases to run out. It takes the study over: every lease the dead run
held is closed as ``interrupted`` (which, unlike ``expired``, never counts against a stage's
retries: the user stopped it, or the machine did) and applied, and work no lease holds is failed
and retried at once.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

from hpsearch.errors import StudyNotFoundError
from hpsearch.results import EpochRecord, Outcome
from hpsearch.scheduling._machine import SINGLE
from hpsearch.storage import as_utc, utcnow

if TYPE_CHECKING:
    from hpsearch.scheduling._leases import LeaseRow
    from hpsearch.scheduling._scheduler import Scheduler

LEASE_EXPIRED = "lease expired"
ORPHANED = "orphaned: no worker held it (a claim was cut off)"


class Reaper:
    """The reaper of one scheduler (its driver's studies only)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.leases = scheduler.leases
        self.started = time.monotonic()
        self.last = 0.0

    def reap_now_and_then(self) -> None:
        """Claims reap on the way, at most once a second (the server's loop does the rest)."""
        if time.monotonic() - self.last > 1.0:
            self.reap_expired()

    def reap(self) -> int:
        """Everything the reaper does: expired leases, unrecorded outcomes, orphaned work.
        Returns how many leases expired."""
        reaped = self.reap_expired()
        if self.in_grace():
            return reaped
        for stale in self.leases.unapplied():
            row = self.leases.get(stale.id)  # a finish may have recorded it since the list
            if row.applied_at is None and row.outcome is not None:
                self.scheduler.apply(row, row.outcome)
        for study in self.scheduler.store.running_studies(driver=self.scheduler.driver):
            try:
                with self.scheduler.contained(study.id, "sweeping its orphaned work failed"):
                    self._sweep_orphans(study.id, self.scheduler.lease_seconds)
            except StudyNotFoundError:
                continue  # deleted since the list was read
        return reaped

    def reap_expired(self) -> int:
        """Fail every item whose lease ran out (its parameters retried); returns how many."""
        self.last = time.monotonic()
        if self.in_grace():
            return 0
        reaped = 0
        for row in self.leases.expired():
            failure = Outcome(
                state="failed",
                reason=LEASE_EXPIRED,
                retryable=True,
                history=_history(row.progress),
                trial_epochs=_trained(row),
            )
            if self.leases.close(row.id, "expired", failure, only_if_expired=True):
                self.scheduler.apply(row, failure)
                reaped += 1
        return reaped

    def take_over(self, study_id: int, reason: str) -> int:
        """Close and apply every lease of the study (its driver is gone, and this one is its
        only driver now), and fail and retry what no lease holds; returns how many leases."""
        taken = 0
        for row in self.leases.held(study_id):
            if row.state == "active":
                failure = Outcome(
                    state="failed",
                    reason=reason,
                    retryable=True,
                    history=_history(row.progress),
                    trial_epochs=_trained(row),
                )
                if self.leases.close(row.id, "interrupted", failure):
                    self.scheduler.apply(row, failure)
                    taken += 1
            elif row.outcome is not None:
                self.scheduler.apply(self.leases.get(row.id), row.outcome)
        self._sweep_orphans(study_id, older_than=0.0, reason=reason)
        return taken

    def in_grace(self) -> bool:
        return time.monotonic() - self.started < self.scheduler.lease_seconds

    def _sweep_orphans(self, study_id: int, older_than: float, reason: str = ORPHANED) -> None:
        held = self.leases.held(study_id)
        trial_ids = {row.item.trial_id for row in held if row.item.trial_id is not None}
        stages = {row.stage for row in held}
        # No claim lock needed: a claim in progress has made its trial or claimed its stage
        # within the last moment, and only work older than ``older_than`` is touched here (a
        # local run taking over is the study's only driver: nothing is in progress).
        store = self.scheduler.store
        self.scheduler.machine.fail_orphans(study_id, trial_ids, older_than, reason)
        stale = utcnow() - timedelta(seconds=older_than)
        for record in store.stages(study_id):
            started = record.started_at
            if (
                record.name in SINGLE
                and record.status == "running"
                and record.name not in stages
                and (started is None or as_utc(started) <= stale)
            ):
                store.update_stage(study_id, record.name, status="pending")


def _history(progress: list[dict[str, float]]) -> list[EpochRecord]:
    """The epochs a worker reported before it went away (validated when they were reported)."""
    return [EpochRecord.model_validate(epoch) for epoch in progress]


def _trained(row: LeaseRow) -> float:
    """The epochs a worker that went away trained (and reported): its round spent them. A
    retried trial's first ones came from a checkpoint; they were counted before."""
    return float(max(0, len(row.progress) - (row.item.resume_epoch or 0)))
