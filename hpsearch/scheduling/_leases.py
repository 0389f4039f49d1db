"""Lease rows: one per work item handed to a worker.

A lease is ``active`` while its worker holds the item, then ``finished`` (the worker delivered an
outcome), ``expired`` (the reaper gave up on the worker) or ``interrupted`` (a local run took its
study over after its own crash). Leaving ``active`` is one conditional
update that stores the outcome with it, so exactly one caller ever wins. Recording that outcome in
the study is a second step; ``applied_at`` says it happened. A finish cut off between the two
steps (a dropped database connection, a killed server) leaves ``applied_at`` empty, and whoever
sees that (a re-sent finish, the reaper) records the stored outcome: nothing delivered is lost, and
nothing is recorded twice (recording an outcome is idempotent in the stage machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hpsearch.errors import HPSearchError
from hpsearch.results import Outcome, WorkItem, stored_item, stored_outcome
from hpsearch.storage import Store, leases, studies, utcnow, workers


class LeaseNotFoundError(HPSearchError):
    """No work item with that id was ever handed out."""

    def __init__(self, lease_id: int) -> None:
        self.lease_id = lease_id
        super().__init__(f"no work item {lease_id}")


class LeaseHeldError(HPSearchError):
    """A worker reported on, renewed or finished a work item another worker holds."""

    def __init__(self, lease_id: int, holder: str, caller: str) -> None:
        self.lease_id, self.holder, self.caller = lease_id, holder, caller
        super().__init__(
            f"work item {lease_id} is held by worker {holder!r}, not {caller!r}: "
            "only the worker that claimed an item may report on, renew or finish it"
        )


def check_holder(lease_id: int, holder: str, worker: str) -> None:
    """Refuse ``worker``'s call on a lease ``holder`` holds (before anything is applied)."""
    if holder != worker:
        raise LeaseHeldError(lease_id, holder, worker)


@dataclass(frozen=True)
class LeaseRow:
    id: int
    study_id: int
    stage: str
    item: WorkItem
    worker: str
    state: str
    outcome: Outcome | None
    progress: list[dict[str, float]]
    claimed_at: datetime
    expires_at: datetime
    applied_at: datetime | None


class LeaseBook:
    """Reads and writes of the lease table for a scheduler."""

    def __init__(self, store: Store, lease_seconds: float, driver: str = "server") -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.driver = driver  # whose leases run out: a server's; a local run takes its over

    def insert(self, conn: Connection, item: WorkItem, worker: str) -> int:
        """A new active lease on ``item`` (inside the claimer's transaction)."""
        now = utcnow()
        lease_id = conn.execute(
            leases.insert()
            .values(
                study_id=item.study_id,
                stage=item.stage,
                item=item.to_dict(),
                worker=worker,
                state="active",
                claimed_at=now,
                expires_at=now + timedelta(seconds=self.lease_seconds),
                trial_id=item.trial_id,
                progress=[],
            )
            .returning(leases.c.id)
        ).scalar_one()
        return int(lease_id)

    def get(self, lease_id: int) -> LeaseRow:
        with self.store.reader.connect() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.id == lease_id)).mappings().first()
        if row is None:
            raise LeaseNotFoundError(lease_id)
        return _lease_row(row)

    def renew(
        self, lease_id: int, worker: str, epoch: dict[str, float] | None = None
    ) -> tuple[LeaseRow, str] | None:
        """Extend ``worker``'s active lease; with ``epoch``, keep that epoch's metrics. Returns
        the lease as renewed (its progress with this epoch) and its study's state, read in the
        same query; None if the lease is not active any more. Another worker's lease raises
        :class:`LeaseHeldError`."""
        now = utcnow()
        with self.store.engine.begin() as conn:
            # locked: a re-sent report running beside the first must not drop its epoch
            query = (
                sa.select(leases, studies.c.state.label("study_state"))
                .join(studies, studies.c.id == leases.c.study_id)
                .where(leases.c.id == lease_id)
                .with_for_update(of=leases)
            )
            row = conn.execute(query).mappings().first()
            if row is None:
                raise LeaseNotFoundError(lease_id)
            check_holder(lease_id, row["worker"], worker)
            if row["state"] != "active":
                return None
            values: dict[str, Any] = {"expires_at": now + timedelta(seconds=self.lease_seconds)}
            if epoch is not None:
                earlier = [e for e in row["progress"] or [] if e.get("epoch") != epoch["epoch"]]
                values["progress"] = [*earlier, epoch]
            renewed = conn.execute(
                leases.update()
                .where(leases.c.id == lease_id, leases.c.state == "active")
                .values(**values)
            )
        if renewed.rowcount != 1:
            return None
        return _lease_row({**row, **values}), str(row["study_state"])

    def close(
        self, lease_id: int, state: str, outcome: Outcome, *, only_if_expired: bool = False
    ) -> bool:
        """Move an active lease to ``state`` with its outcome; True only for the one caller that
        did. With ``only_if_expired``, not if a report or heartbeat renewed it meanwhile."""
        where = [leases.c.id == lease_id, leases.c.state == "active"]
        if only_if_expired:
            where.append(leases.c.expires_at < utcnow())
        with self.store.engine.begin() as conn:
            moved = conn.execute(
                leases.update().where(*where).values(state=state, outcome=outcome.to_dict())
            )
        return bool(moved.rowcount == 1)

    def mark_applied(self, row: LeaseRow) -> None:
        """The outcome is recorded in the study; a worker that finished the item has one more
        done (once, however often this is called)."""
        with self.store.engine.begin() as conn:
            marked = conn.execute(
                leases.update()
                .where(leases.c.id == row.id, leases.c.applied_at.is_(None))
                .values(applied_at=utcnow())
            )
            if marked.rowcount != 1:
                return
            finished = sa.exists().where(leases.c.id == row.id, leases.c.state == "finished")
            conn.execute(
                workers.update()
                .where(workers.c.id == row.worker, finished)
                .values(items_done=workers.c.items_done + 1)
            )

    def expired(self) -> list[LeaseRow]:
        """Active leases of this driver's studies whose time ran out."""
        driven = sa.select(studies.c.id).where(studies.c.driver == self.driver)
        return self._select(
            leases.c.state == "active",
            leases.c.expires_at < utcnow(),
            leases.c.study_id.in_(driven),
        )

    def unapplied(self) -> list[LeaseRow]:
        """Closed leases whose outcome was never recorded, and whose finish is long over."""
        return self._select(
            leases.c.state != "active",
            leases.c.applied_at.is_(None),
            leases.c.expires_at < utcnow(),
        )

    def count_expired(self, study_id: int, stage: str) -> int:
        """How often a worker went silent on the study's ``stage`` (its leases that expired)."""
        query = sa.select(sa.func.count()).where(
            leases.c.study_id == study_id, leases.c.stage == stage, leases.c.state == "expired"
        )
        with self.store.reader.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def count_active(self) -> int:
        with self.store.reader.connect() as conn:
            query = sa.select(sa.func.count()).where(leases.c.state == "active")
            return int(conn.execute(query).scalar_one())

    def held(self, study_id: int) -> list[LeaseRow]:
        """The study's leases whose work is not yet recorded (active, or closed but unapplied)."""
        return self._select(leases.c.study_id == study_id, leases.c.applied_at.is_(None))

    def _select(self, *where: Any) -> list[LeaseRow]:
        with self.store.reader.connect() as conn:
            rows = conn.execute(sa.select(leases).where(*where).order_by(leases.c.id)).mappings()
            return [_lease_row(r) for r in rows]


def _lease_row(row: Any) -> LeaseRow:
    item = stored_item(row["item"])
    return LeaseRow(
        id=row["id"],
        study_id=row["study_id"],
        stage=row["stage"],
        item=item,
        worker=row["worker"],
        state=row["state"],
        outcome=stored_outcome(row["outcome"], item.kind) if row["outcome"] is not None else None,
        progress=list(row["progress"] or []),
        claimed_at=row["claimed_at"],
        expires_at=row["expires_at"],
        applied_at=row["applied_at"],
    )
