"""The store: our tables plus Optuna's RDB storage, over one database URL.

Every read and write of search state goes through here, so the recipe's stage machine can be driven
by any process (the local runner, an API server) that can open the same URL.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from optuna.storages import RDBStorage
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from hpsearch.errors import StorageError, StudyExistsError, StudyNotFoundError
from hpsearch.spec import StudySpec, read_stored_spec
from hpsearch.storage import migrations
from hpsearch.storage._artifacts import Artifacts, artifact_dir
from hpsearch.storage._engine import create_engine, engine_kwargs, normalize_url
from hpsearch.storage._tables import stages, studies

log = logging.getLogger(__name__)

STUDY_STATES = ("running", "stopped", "completed", "failed")
DRIVERS = ("local", "server")
STAGE_STATUSES = ("pending", "running", "passed", "failed", "skipped", "completed")
FINISHED_STAGE = ("passed", "failed", "skipped", "completed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored moment as an aware UTC datetime (SQLite hands back naive ones)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StudyRecord:
    id: int
    name: str
    spec: StudySpec
    state: str
    message: str | None
    driver: str  # "server" (launched through the API) or "local" (hpsearch run)
    created_at: datetime
    updated_at: datetime
    # what the current rules refuse in a spec stored by an earlier version (read_stored_spec);
    # such a study is shown, never run
    spec_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageRecord:
    name: str
    position: int
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    trial_epochs: float
    seconds: float
    result: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STAGE

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "trial_epochs": self.trial_epochs,
            "seconds": self.seconds,
            **self.result,
        }


class Store:
    """Our tables and Optuna's storage in the database at ``url`` (created or upgraded by the
    migrations when the store opens)."""

    def __init__(self, url: str, artifacts: str | Path | None = None) -> None:
        self.url = normalize_url(url)
        self.artifacts = Artifacts(artifact_dir(self.url, artifacts))  # the studies' model files
        try:
            self.engine = create_engine(self.url)
            migrations.upgrade(self.engine)
        except (sa.exc.ArgumentError, sa.exc.OperationalError, ImportError) as exc:
            raise StorageError(url, _first_line(exc)) from None
        self._optuna: RDBStorage | None = None
        self._optuna_lock = threading.Lock()
        # Reads need no transaction: in autocommit mode a read is one round trip, not three
        # (BEGIN, the query, ROLLBACK); under load those trips were much of a server's time.
        self.reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._optuna_reader: Engine | None = None

    @property
    def optuna(self) -> RDBStorage:
        """Optuna's storage on the same database (opened on first use, once per store).

        Opening creates Optuna's tables when missing. Two threads or processes doing that at once
        collide in PostgreSQL's catalog (a unique violation on pg_type), hence the thread lock
        and, across processes (servers starting together), the migrations' advisory lock.
        """
        with self._optuna_lock:
            if self._optuna is None:
                with migrations.schema_lock(self.engine):
                    self._optuna = RDBStorage(self.url, engine_kwargs=engine_kwargs(self.url))
            return self._optuna

    @property
    def optuna_reader(self) -> Engine:
        """Optuna's engine in autocommit mode, for reads of Optuna's tables."""
        if self._optuna_reader is None:
            engine = self.optuna.engine
            self._optuna_reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._optuna_reader

    def warm(self) -> None:
        """Open Optuna's storage and fill both connection pools now. A server that has just
        started is often met by every worker at once (they wait for it together); each claim
        that had to open a database connection, or Optuna's storage, made all of them slow.
        A database that refuses more connections (PostgreSQL's ``max_connections``) stops the
        filling with a warning, not the server: the pools then grow as requests need them."""
        for engine in (self.engine, self.optuna.engine):
            size = getattr(engine.pool, "size", None)
            with contextlib.ExitStack() as held:
                for _ in range(size() if callable(size) else 1):
                    try:
                        held.enter_context(engine.connect())
                    except sa.exc.OperationalError as exc:
                        log.warning("connection pool not filled: %s", _first_line(exc))
                        return

    def close(self) -> None:
        self.engine.dispose()
        if self._optuna is not None:
            self._optuna.engine.dispose()

    # --- studies -----------------------------------------------------------------------------

    def create_study(self, spec: StudySpec, driver: str = "local") -> StudyRecord:
        """Insert a new running study; a taken name raises :class:`StudyExistsError`."""
        assert driver in DRIVERS, driver
        now = utcnow()
        row = {
            "name": spec.name,
            "spec": spec.model_dump(mode="json"),
            "state": "running",
            "message": None,
            "driver": driver,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(studies.insert().values(**row))
        except IntegrityError:
            raise StudyExistsError(spec.name) from None
        return self.get_study(spec.name)

    def find_study(self, key: str | int) -> StudyRecord | None:
        column = studies.c.id if isinstance(key, int) else studies.c.name
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(studies).where(column == key)).mappings().first()
        return None if row is None else _study_record(row)

    def count_studies(self) -> int:
        """How many studies there are (also a cheap check that the database answers)."""
        with self.reader.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(studies)).scalar_one())

    def count_studies_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(STUDY_STATES, 0)
        query = sa.select(studies.c.state, sa.func.count()).group_by(studies.c.state)
        with self.reader.connect() as conn:
            for state, n in conn.execute(query):
                counts[state] = n
        return counts

    def running_studies(self, driver: str) -> list[StudyRecord]:
        """The running studies ``driver`` drives (``server`` or ``local``), oldest first."""
        query = (
            sa.select(studies)
            .where(studies.c.state == "running", studies.c.driver == driver)
            .order_by(studies.c.id)
        )
        with self.reader.connect() as conn:
            return [_study_record(r) for r in conn.execute(query).mappings()]

    def list_studies(self) -> list[StudyRecord]:
        """Every study, oldest first."""
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(studies).order_by(studies.c.id)).mappings()
            return [_study_record(r) for r in rows]

    def delete_study(self, study_id: int) -> None:
        """Remove the study and its stage rows (Optuna's studies are the machine's to delete)."""
        with self.engine.begin() as conn:
            conn.execute(stages.delete().where(stages.c.study_id == study_id))
            conn.execute(studies.delete().where(studies.c.id == study_id))

    def get_study(self, key: str | int) -> StudyRecord:
        record = self.find_study(key)
        if record is None:
            raise StudyNotFoundError(key)
        return record

    def study_state(self, study_id: int) -> str:
        """Just the study's state (a cheap read for every epoch report)."""
        with self.reader.connect() as conn:
            state = conn.execute(
                sa.select(studies.c.state).where(studies.c.id == study_id)
            ).scalar()
        if state is None:
            raise StudyNotFoundError(study_id)
        return str(state)

    def set_study_state(
        self,
        study_id: int,
        state: str,
        message: str | None = None,
        *,
        driver: str | None = None,
        only_from: str | None = None,
    ) -> bool:
        """Set the state (and the driver, if given); with ``only_from``, only if the study is in
        that state now. True if the row changed."""
        assert state in STUDY_STATES, state
        values: dict[str, Any] = {"state": state, "message": message, "updated_at": utcnow()}
        if driver is not None:
            assert driver in DRIVERS, driver
            values["driver"] = driver
        query = studies.update().where(studies.c.id == study_id)
        if only_from is not None:
            query = query.where(studies.c.state == only_from)
        with self.engine.begin() as conn:
            return bool(conn.execute(query.values(**values)).rowcount == 1)

    # --- stages ------------------------------------------------------------------------------

    def stages(self, study_id: int) -> list[StageRecord]:
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(stages).where(stages.c.study_id == study_id).order_by(stages.c.position)
            ).mappings()
            return [_stage_record(r) for r in rows]

    def stage(self, study_id: int, name: str) -> StageRecord | None:
        with self.reader.connect() as conn:
            row = (
                conn.execute(
                    sa.select(stages).where(stages.c.study_id == study_id, stages.c.name == name)
                )
                .mappings()
                .first()
            )
        return None if row is None else _stage_record(row)

    def start_stage(
        self, study_id: int, name: str, position: int, result: dict[str, Any] | None = None
    ) -> StageRecord:
        """Create the stage's row as running, or return it as it is if it exists already."""
        self._insert_stage(study_id, name, position, result or {})
        record = self.stage(study_id, name)
        assert record is not None
        return record

    def claim_stage(self, study_id: int, name: str, position: int) -> bool:
        """Mark a single-item stage running; True only for the one caller that claimed it.

        Two drivers racing for the same stage both try; the unique (study, name) row, or the
        ``pending -> running`` update matching one row, lets exactly one of them win.
        """
        if self._insert_stage(study_id, name, position, {}):
            return True
        with self.engine.begin() as conn:
            claimed = conn.execute(
                stages.update()
                .where(
                    stages.c.study_id == study_id,
                    stages.c.name == name,
                    stages.c.status == "pending",
                )
                .values(status="running", started_at=utcnow())
            )
        return claimed.rowcount == 1

    def _insert_stage(
        self, study_id: int, name: str, position: int, result: dict[str, Any]
    ) -> bool:
        """Insert a running stage row; False if the row exists (another driver was first)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    stages.insert().values(
                        study_id=study_id,
                        name=name,
                        position=position,
                        status="running",
                        started_at=utcnow(),
                        trial_epochs=0.0,
                        seconds=0.0,
                        result=result,
                    )
                )
        except IntegrityError:
            return False
        return True

    def add_stage_compute(
        self, study_id: int, name: str, trial_epochs: float, seconds: float
    ) -> None:
        """Add to a stage's compute in one statement, so concurrent finishes never lose any."""
        with self.engine.begin() as conn:
            conn.execute(
                stages.update()
                .where(stages.c.study_id == study_id, stages.c.name == name)
                .values(
                    trial_epochs=stages.c.trial_epochs + trial_epochs,
                    seconds=stages.c.seconds + seconds,
                )
            )

    def update_stage(self, study_id: int, name: str, **values: Any) -> None:
        """Set columns of a stage row (``status``, ``result``, ``trial_epochs``, ...)."""
        if values.get("status") in FINISHED_STAGE and "finished_at" not in values:
            values["finished_at"] = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                stages.update()
                .where(stages.c.study_id == study_id, stages.c.name == name)
                .values(**values)
            )


def _study_record(row: Any) -> StudyRecord:
    spec, problems = read_stored_spec(row["spec"], f"stored spec of {row['name']}")
    return StudyRecord(
        id=row["id"],
        name=row["name"],
        spec=spec,
        spec_problems=tuple(f"{path}: {message}" for path, message in problems),
        state=row["state"],
        message=row["message"],
        driver=row["driver"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _stage_record(row: Any) -> StageRecord:
    return StageRecord(
        name=row["name"],
        position=row["position"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        trial_epochs=row["trial_epochs"],
        seconds=row["seconds"],
        result=dict(row["result"]),
    )
