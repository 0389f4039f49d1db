"""The workers a server has seen: who they are, where, on what devices, doing what, and when they
last spoke (every claim, report and heartbeat counts)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hpsearch.protocol import CurrentItem, WorkerRead
from hpsearch.storage import Store, as_utc, leases, upsert, utcnow, workers


class WorkerBook:
    def __init__(self, store: Store, alive_seconds: float) -> None:
        self.store = store
        self.alive_seconds = alive_seconds  # a worker silent longer than this is not alive
        # An idle worker claims every few seconds; rewriting an unchanged row each time was a
        # third of what such a claim cost. It is rewritten when it changes, else at most this
        # often (by this process), well inside the time that makes a worker count as gone.
        self.quiet_seconds = min(5.0, alive_seconds / 4)
        self._written: dict[str, tuple[float, tuple[Any, ...] | None]] = {}  # clock, row
        self._written_lock = threading.Lock()

    def seen(self, worker: str, host: str | None, devices: list[str]) -> None:
        """Record a claim: the worker exists, where, on what, and was seen now."""
        row, clock = (host, tuple(devices)), time.monotonic()
        with self._written_lock:
            last = self._written.get(worker)
            if last is not None and last[1] == row and clock - last[0] < self.quiet_seconds:
                return
        self._write(worker, host, devices)
        with self._written_lock:
            self._written[worker] = (clock, row)

    def heard(self, worker: str) -> None:
        """A report or heartbeat from ``worker``: it was seen now. Written at most every
        ``quiet_seconds`` as well (by this process): a report came with every epoch."""
        clock = time.monotonic()
        with self._written_lock:
            last = self._written.get(worker)
            if last is not None and clock - last[0] < self.quiet_seconds:
                return
            self._written[worker] = (clock, last[1] if last is not None else None)
        with self.store.engine.begin() as conn:
            conn.execute(workers.update().where(workers.c.id == worker).values(last_seen=utcnow()))

    def _write(self, worker: str, host: str | None, devices: list[str]) -> None:
        now = utcnow()
        values = {"host": host, "devices": devices, "last_seen": now}
        new = {"id": worker, "first_seen": now, "items_done": 0, **values}
        with self.store.engine.begin() as conn:
            conn.execute(upsert(self.store.engine, workers, new, ["id"], list(values)))

    def count_alive(self) -> int:
        since = utcnow() - timedelta(seconds=self.alive_seconds)
        with self.store.reader.connect() as conn:
            query = sa.select(sa.func.count()).where(workers.c.last_seen >= since)
            return int(conn.execute(query).scalar_one())

    def list(self, alive_only: bool = False) -> list[WorkerRead]:
        """Every worker (or only live ones), most recently seen first, with its current item:
        its newest active lease, read from the leases so that no claim has to write it into
        the worker's row."""
        since = utcnow() - timedelta(seconds=self.alive_seconds)
        current = (
            sa.select(leases.c.worker, sa.func.max(leases.c.id).label("lease_id"))
            .where(leases.c.state == "active")
            .group_by(leases.c.worker)
            .subquery()
        )
        query = (
            sa.select(workers, current.c.lease_id, leases.c.item)
            .select_from(
                workers.outerjoin(current, current.c.worker == workers.c.id).outerjoin(
                    leases, leases.c.id == current.c.lease_id
                )
            )
            .order_by(workers.c.last_seen.desc(), workers.c.id)
        )
        if alive_only:
            query = query.where(workers.c.last_seen >= since)
        with self.store.reader.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_worker_view(row, since) for row in rows]


def _worker_view(row: Any, since: datetime) -> WorkerRead:
    current = None
    if row["item"] is not None:
        item = row["item"]  # the stored JSON: only its plain fields are read, never its spec
        current = CurrentItem(
            id=row["lease_id"],
            study_id=item["study_id"],
            study=item["study"],
            stage=item["stage"],
            kind=item["kind"],
            trial_number=item["trial_number"],
            params=item["params"],
        )
    last_seen = row["last_seen"]
    return WorkerRead(
        id=row["id"],
        host=row["host"],
        devices=row["devices"],
        first_seen=row["first_seen"].isoformat(),
        last_seen=last_seen.isoformat(),
        alive=as_utc(last_seen) >= since,
        items_done=row["items_done"],
        current=current,
    )
