"""Scheduling for remote workers: claims, leases, reports, heartbeats, finishes, the reaper.

A claim asks the stage machine for the next work item of a running study and records a lease on
it. The worker renews the lease with every report or heartbeat; a lease that runs out is reaped:
its item is finished as failed ("lease expired") and the machine re-enqueues a trial's parameters
(up to ``max_retries``) or reopens a single stage.

Races, with any number of server processes on one database:
- two claims for one study: the claimer holds a per-study lock while the machine decides (on
  PostgreSQL a transaction-scoped advisory lock taken with ``pg_try_advisory_xact_lock``, so the
  other claimer skips the study rather than waiting, like ``SKIP LOCKED``; not a row lock, which
  would deadlock against the machine's own update of the study row; on SQLite, whose writes are
  serialized anyway, one lock per process), so the machine never hands out two items where one
  is due;
- a finish and the reaper (or two finishes): a lease leaves ``active`` by one conditional update;
  only the caller whose update matched the row applies the outcome, so nothing is applied twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from hpsearch.errors import HPSearchError
from hpsearch.recipe import Outcome, StageMachine, WorkItem
from hpsearch.storage import Store, utcnow
from hpsearch.storage._tables import leases, studies

LEASE_EXPIRED = "lease expired"
_LOCK_SPACE = 0x4850  # first key of our advisory locks ("HP"); the second is the study id


class LeaseNotFoundError(HPSearchError):
    """No work item with that id was ever handed out."""

    def __init__(self, lease_id: int) -> None:
        self.lease_id = lease_id
        super().__init__(f"no work item {lease_id}")


@dataclass(frozen=True)
class Lease:
    id: int
    item: WorkItem
    lease_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "lease_seconds": self.lease_seconds, "item": self.item.to_dict()}


class Scheduler:
    """Hands out work items under leases and takes back their reports and outcomes."""

    def __init__(self, machine: StageMachine, lease_seconds: float = 60.0) -> None:
        self.machine = machine
        self.store: Store = machine.store
        self.lease_seconds = lease_seconds
        self._local = threading.Lock()  # SQLite: one claimer at a time in this process

    def claim(self, worker: str) -> Lease | None:
        """The next work item of any running study, oldest study first; None if there is none."""
        self.reap()
        for study_id in self._running_study_ids():
            lease = self._claim_in(study_id, worker)
            if lease is not None:
                return lease
        return None

    def _claim_in(self, study_id: int, worker: str) -> Lease | None:
        postgres = self.store.engine.dialect.name == "postgresql"
        with self._local, self.store.engine.begin() as conn:
            if postgres:
                locked = conn.execute(
                    sa.select(sa.func.pg_try_advisory_xact_lock(_LOCK_SPACE, study_id))
                ).scalar()
                if not locked:  # another server is handing out this study's work right now
                    return None
            item = self.machine.next_item(study_id)
            if not isinstance(item, WorkItem):
                return None
            now = utcnow()
            lease_id = conn.execute(
                leases.insert()
                .values(
                    study_id=study_id,
                    stage=item.stage,
                    item=item.to_dict(),
                    worker=worker,
                    state="active",
                    claimed_at=now,
                    expires_at=now + timedelta(seconds=self.lease_seconds),
                )
                .returning(leases.c.id)
            ).scalar_one()
        return Lease(int(lease_id), item, self.lease_seconds)

    def report(self, lease_id: int, epoch: int, metrics: dict[str, float]) -> bool:
        """Record an epoch and renew the lease; True means "stop now" (pruned, stopped, expired)."""
        if not self._renew(lease_id):
            return True
        return self.machine.report(self._item(lease_id), epoch, metrics)

    def heartbeat(self, lease_id: int) -> bool:
        """Renew the lease; False means the item is no longer this worker's to finish."""
        if not self._renew(lease_id):
            return False
        study = self.store.get_study(self._item(lease_id).study_id)
        return study.state == "running"

    def finish(self, lease_id: int, outcome: Outcome) -> bool:
        """Apply ``outcome`` once; a repeated or late finish is acknowledged and not applied."""
        item = self._item(lease_id)
        if not self._leave_active(lease_id, "finished", outcome):
            return False
        self.machine.finish(item, outcome)
        return True

    def reap(self) -> int:
        """Fail every item whose lease ran out (its parameters retried); returns how many."""
        with self.store.engine.connect() as conn:
            expired = conn.execute(
                sa.select(leases.c.id).where(
                    leases.c.state == "active", leases.c.expires_at < utcnow()
                )
            ).all()
        reaped = 0
        for (lease_id,) in expired:
            failure = Outcome(state="failed", reason=LEASE_EXPIRED, retryable=True)
            if self._leave_active(lease_id, "expired", failure):
                self.machine.finish(self._item(lease_id), failure)
                reaped += 1
        return reaped

    # --- lease rows ------------------------------------------------------------------------------

    def _renew(self, lease_id: int) -> bool:
        with self.store.engine.begin() as conn:
            renewed = conn.execute(
                leases.update()
                .where(leases.c.id == lease_id, leases.c.state == "active")
                .values(expires_at=utcnow() + timedelta(seconds=self.lease_seconds))
            )
        if renewed.rowcount == 0:
            self._item(lease_id)  # raises for an id never handed out
            return False
        return True

    def _leave_active(self, lease_id: int, state: str, outcome: Outcome) -> bool:
        """Move the lease out of ``active``; True only for the one caller that did."""
        with self.store.engine.begin() as conn:
            moved = conn.execute(
                leases.update()
                .where(leases.c.id == lease_id, leases.c.state == "active")
                .values(state=state, outcome=outcome.to_dict())
            )
        return bool(moved.rowcount == 1)

    def _item(self, lease_id: int) -> WorkItem:
        with self.store.engine.connect() as conn:
            data = conn.execute(sa.select(leases.c.item).where(leases.c.id == lease_id)).scalar()
        if data is None:
            raise LeaseNotFoundError(lease_id)
        return WorkItem.from_dict(data)

    def _running_study_ids(self) -> list[int]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(studies.c.id).where(studies.c.state == "running").order_by(studies.c.id)
            )
            return [int(r[0]) for r in rows]
