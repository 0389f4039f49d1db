"""Reporting and ending trials in Optuna's rows: the hot paths of a server.

Every epoch of every trial records an intermediate value, and the study's own pruner decides
from it; every finish ends a trial. Both write Optuna's rows in core SQL (the rows Optuna itself
writes, a test holds the two to the same result) in a statement or two, where Optuna's storage
takes an ORM session and several round trips.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import Any, cast

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution
from optuna.pruners import MedianPruner
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import optuna_schema as schema
from hpsearch.storage._engine import upsert
from hpsearch.storage._store import Store

_TRIALS = schema.TRIALS
_USER_ATTRS = schema.USER_ATTRS
_VALUES = schema.INTERMEDIATE_VALUES
_TRIAL_VALUES = schema.TRIAL_VALUES


class TrialRows:
    """Records epochs and ends of one store's trials."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._complete: dict[int, dict[int, FrozenTrial]] = {}  # by Optuna study id, trial id
        self._lock = threading.Lock()  # guards the cache of completed trials

    def forget_completed(self, ostudies: list[optuna.Study]) -> None:
        """Drop the completed trials kept of ``ostudies`` (deleted: Optuna may give their ids
        to new studies)."""
        with self._lock:
            for ostudy in ostudies:
                self._complete.pop(schema.study_id(ostudy), None)

    # --- reporting and finishing ---------------------------------------------------------------

    def report(
        self,
        ostudy: optuna.Study,
        trial_id: int,
        number: int,
        epoch: int,
        value: float,
        curve: Mapping[int, float] | None = None,
    ) -> bool:
        """Record an epoch's validation objective; True if the pruner says stop (or the trial is
        already over). ``curve``, if given, is every value the trial reported (epoch -> value,
        this one included), which then need not be read back."""
        storage = self.store.optuna
        if not self._record_value(trial_id, epoch, value):
            return True
        if not isinstance(ostudy.pruner, MedianPruner):
            # successive halving and hyperband keep rungs in trials' system attributes and
            # look at the whole study: give them the real thing
            return bool(ostudy.pruner.prune(ostudy, storage.get_trial(trial_id)))
        # A median pruner reads only the study's direction, its completed trials' intermediate
        # values and this trial's: give it those, read in two or three small queries instead of
        # rebuilding every unfinished trial of the study from the database.
        values = {trial_id: dict(curve)} if curve is not None else self._values([trial_id])
        frozen = _with_values(trial_id, number, TrialState.RUNNING, values)
        view = schema.PrunerView(self._completed(ostudy))
        return bool(ostudy.pruner.prune(cast(optuna.Study, view), frozen))

    def _completed(self, ostudy: optuna.Study) -> list[FrozenTrial]:
        """The study's COMPLETE trials with their intermediate values. A completed trial never
        changes, so each is read once per process; later calls read only the new ones."""
        query = sa.select(_TRIALS.c.trial_id, _TRIALS.c.number).where(
            _TRIALS.c.study_id == schema.study_id(ostudy), _TRIALS.c.state == TrialState.COMPLETE
        )
        with self.store.optuna_reader.connect() as conn:
            numbers = {int(i): int(n) for i, n in conn.execute(query)}
        with self._lock:
            known = self._complete.setdefault(schema.study_id(ostudy), {})
            new = [i for i in numbers if i not in known]
        if new:
            values = self._values(new)
            with self._lock:
                for i in new:
                    known[i] = _with_values(i, numbers[i], TrialState.COMPLETE, values)
        return [known[i] for i in sorted(numbers, key=numbers.__getitem__)]

    def _values(self, trial_ids: list[int]) -> dict[int, dict[int, float]]:
        """Intermediate values of some trials: trial id -> step -> value."""
        query = sa.select(
            _VALUES.c.trial_id,
            _VALUES.c.step,
            _VALUES.c.intermediate_value,
            _VALUES.c.intermediate_value_type,
        ).where(_VALUES.c.trial_id.in_(trial_ids))
        values: dict[int, dict[int, float]] = {i: {} for i in trial_ids}
        with self.store.optuna_reader.connect() as conn:
            for trial_id, step, value, kind in conn.execute(query):
                values[int(trial_id)][int(step)] = schema.decode_intermediate(value, kind)
        return values

    def set_while_running(self, trial_id: int, key: str, value: Any) -> bool:
        """Set a user attribute of a trial that is still RUNNING (in one transaction with the
        check); False, and nothing set, once it has ended."""
        engine = self.store.optuna.engine
        with engine.begin() as conn:
            state = conn.execute(
                sa.select(_TRIALS.c.state).where(_TRIALS.c.trial_id == trial_id)
            ).scalar_one_or_none()
            if state != TrialState.RUNNING:
                return False
            row = {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
            conn.execute(upsert(engine, _USER_ATTRS, row, ["trial_id", "key"], ["value_json"]))
        return True

    def finish(
        self,
        trial_id: int,
        state: TrialState,
        value: float | None,
        user_attrs: Mapping[str, Any],
        curve: Mapping[int, float] | None = None,
    ) -> bool:
        """End a trial once (a RUNNING one, or a WAITING one cancelled unstarted): its state,
        its user attributes and its value, in one transaction; a PRUNED trial's value is its last
        intermediate value, as ``Study.tell`` does. Returns False if it had ended already.

        ``curve`` (epoch -> value, from the trial's history) fills in intermediate values its
        reports never delivered (a report lost to a dropped connection, an outcome spooled while
        the server was away); values that were reported are kept as they are.

        The rows are the ones Optuna's storage writes (a test holds the two to the same result),
        in three or four statements where its storage takes ten and two transactions.
        """
        engine = self.store.optuna.engine
        with engine.begin() as conn:
            ended = conn.execute(
                _TRIALS.update()
                .where(
                    _TRIALS.c.trial_id == trial_id,
                    _TRIALS.c.state.in_([TrialState.RUNNING, TrialState.WAITING]),
                )
                .values(state=state, datetime_complete=schema.optuna_now())
            )
            if ended.rowcount != 1:
                return False  # someone else ended it
            if curve:
                self._fill_values(conn, trial_id, curve)
            if state == TrialState.PRUNED:
                last = conn.execute(
                    sa.select(_VALUES.c.intermediate_value, _VALUES.c.intermediate_value_type)
                    .where(_VALUES.c.trial_id == trial_id)
                    .order_by(_VALUES.c.step.desc())
                    .limit(1)
                ).first()
                value = None if last is None else schema.decode_intermediate(*last)
                if value is not None and math.isnan(value):
                    value = None  # as Study.tell: a pruned trial's NaN is no value
            if user_attrs:
                rows = [
                    {"trial_id": trial_id, "key": key, "value_json": json.dumps(attr)}
                    for key, attr in user_attrs.items()
                ]
                conn.execute(upsert(engine, _USER_ATTRS, rows, ["trial_id", "key"], ["value_json"]))
            if value is not None:
                stored, kind = schema.encode_value(value)
                conn.execute(
                    _TRIAL_VALUES.insert().values(
                        trial_id=trial_id, objective=0, value=stored, value_type=kind
                    )
                )
        return True

    def _fill_values(self, conn: sa.Connection, trial_id: int, curve: Mapping[int, float]) -> None:
        """Insert the intermediate values of ``curve`` that the trial does not have."""
        known = conn.execute(sa.select(_VALUES.c.step).where(_VALUES.c.trial_id == trial_id))
        have = {int(step) for (step,) in known}
        rows = []
        for step, value in sorted(curve.items()):
            if step not in have:
                stored, kind = schema.encode_intermediate(value)
                row = {"trial_id": trial_id, "step": step, "intermediate_value": stored}
                rows.append(row | {"intermediate_value_type": kind})
        if rows:
            conn.execute(_VALUES.insert(), rows)

    def _record_value(self, trial_id: int, step: int, value: float) -> bool:
        """Keep a RUNNING trial's intermediate value for ``step`` (a re-sent report replaces
        it); False if the trial has ended (or is gone). What Optuna's
        ``set_trial_intermediate_value`` does, in two statements instead of four and an ORM
        session: this runs for every epoch.

        The value is written first and the trial's state read after, in the same transaction,
        which is undone unless the trial is still running. So a finish cannot slip in between
        and leave a value on an ended trial: on SQLite the write holds the database's write lock
        until the end; on PostgreSQL the state is read with a share lock, which a finish's update
        waits for (or, having committed first, is seen).
        """
        engine = self.store.optuna.engine
        stored, kind = schema.encode_intermediate(value)
        row = {
            "trial_id": trial_id,
            "step": step,
            "intermediate_value": stored,
            "intermediate_value_type": kind,
        }
        update = ["intermediate_value", "intermediate_value_type"]
        with engine.connect() as conn, conn.begin() as transaction:
            conn.execute(upsert(engine, _VALUES, row, ["trial_id", "step"], update))
            state = conn.execute(
                sa.select(_TRIALS.c.state)
                .where(_TRIALS.c.trial_id == trial_id)
                .with_for_update(read=True)
            ).scalar()
            if state != TrialState.RUNNING:
                transaction.rollback()
                return False
        return True


def _with_values(
    trial_id: int, number: int, state: TrialState, values: Mapping[int, dict[int, float]]
) -> FrozenTrial:
    return frozen_trial(state, number, trial_id, values=values.get(trial_id, {}))


def frozen_trial(
    state: TrialState,
    number: int = -1,
    trial_id: int = -1,
    params: Mapping[str, Any] | None = None,
    dists: Mapping[str, BaseDistribution] | None = None,
    values: Mapping[int, float] | None = None,
    user_attrs: Mapping[str, Any] | None = None,
) -> FrozenTrial:
    """A trial as Optuna's samplers and pruners read one, built from rows already read."""
    return FrozenTrial(
        number=number,
        state=state,
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params=dict(params or {}),
        distributions=dict(dists or {}),
        user_attrs=dict(user_attrs or {}),
        system_attrs={},
        intermediate_values=dict(values or {}),
        trial_id=trial_id,
    )
