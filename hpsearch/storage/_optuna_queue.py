"""Counting, queueing and starting trials in Optuna's rows: a claim's hot path.

A claim starts a trial, and a search round queues its trials before that: both write Optuna's
rows in core SQL (the rows Optuna itself writes for a trial with parameters and user attributes;
``optuna.load_study`` reads them, a test holds the two to the same result), where ``Study.ask``
rebuilds whole trials from the database several times per call. Reads that only need a state or
a count are single statements.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import optuna_schema as schema
from hpsearch.storage._optuna_trials import TrialRows, frozen_trial

_TRIALS = schema.TRIALS
_USER_ATTRS = schema.USER_ATTRS
_PARAMS = schema.PARAMS
_STUDIES = schema.STUDIES
STATE_NAMES: dict[TrialState, str] = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


class Queued(NamedTuple):
    """A trial to queue: its parameters (values as Optuna's trial shows them), their
    distributions, and its user attributes (JSON values, e.g. its stage and lineage)."""

    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    user_attrs: dict[str, Any]


class TrialQueue(TrialRows):
    """Counts, queues and starts one store's trials (and records their epochs and ends)."""

    # --- counting ------------------------------------------------------------------------------

    def counts(self, ostudy: optuna.Study) -> dict[str, int]:
        """Trials by state in one query; a failed trial whose parameters were retried counts as
        ``retried``, not ``failed`` (its retry is another trial)."""
        retried = _USER_ATTRS.alias("retried")
        joined = _TRIALS.outerjoin(
            retried, sa.and_(retried.c.trial_id == _TRIALS.c.trial_id, retried.c.key == "retried")
        )
        query = (
            sa.select(_TRIALS.c.state, retried.c.value_json, sa.func.count())
            .select_from(joined)
            .where(_TRIALS.c.study_id == schema.study_id(ostudy))
            .group_by(_TRIALS.c.state, retried.c.value_json)
        )
        counts = dict.fromkeys(("complete", "pruned", "failed", "retried", "running", "waiting"), 0)
        with self.store.optuna_reader.connect() as conn:
            for state, retried_json, n in conn.execute(query):
                was_retried = state == TrialState.FAIL and retried_json == "true"
                name = "retried" if was_retried else STATE_NAMES[state]
                counts[name] += n
        return counts

    def census(self) -> dict[str, int]:
        """Trials of every study in the database by state (complete, pruned, failed, ...)."""
        query = sa.select(_TRIALS.c.state, sa.func.count()).group_by(_TRIALS.c.state)
        counts = dict.fromkeys(STATE_NAMES.values(), 0)
        with self.store.optuna_reader.connect() as conn:
            for state, n in conn.execute(query):
                counts[STATE_NAMES[state]] += n
        return counts

    def running_trial_ids(self, ostudy: optuna.Study, older_than: float) -> list[int]:
        """Ids of the study's RUNNING trials that started more than ``older_than`` seconds ago."""
        started_before = schema.optuna_now() - timedelta(seconds=older_than)
        query = sa.select(_TRIALS.c.trial_id).where(
            _TRIALS.c.study_id == schema.study_id(ostudy),
            _TRIALS.c.state == TrialState.RUNNING,
            _TRIALS.c.datetime_start < started_before,
        )
        with self.store.optuna_reader.connect() as conn:
            return [int(r[0]) for r in conn.execute(query)]

    def trial_ids(self, ostudy: optuna.Study, states: Collection[TrialState]) -> list[int]:
        """Ids of the study's trials in ``states``."""
        query = sa.select(_TRIALS.c.trial_id).where(
            _TRIALS.c.study_id == schema.study_id(ostudy), _TRIALS.c.state.in_(states)
        )
        with self.store.optuna_reader.connect() as conn:
            return [int(r[0]) for r in conn.execute(query)]

    # --- queueing and starting -----------------------------------------------------------------

    def insert_waiting(
        self, ostudy: optuna.Study, count: int, make: Callable[[int, int], Queued]
    ) -> None:
        """Insert ``count`` WAITING trials, the ``i``-th made by ``make(i, its number)``, in one
        transaction of a handful of statements.

        Numbering as Optuna's ``create_new_trial`` does it: a trial's number is the count of
        the study's trials before it, counted once the new rows are written, so that the write
        lock is held (on SQLite, whose transactions take it at the first write, not at BEGIN);
        on PostgreSQL the study's row is locked first as well. The rows are the ones Optuna
        itself writes for a trial with parameters and user attributes (``optuna.load_study``
        reads them; a test holds the two to the same result), written in bulk rather than one
        session and a dozen statements per trial.
        """
        if count == 0:
            return
        owner = schema.study_id(ostudy)
        with self.store.optuna.engine.begin() as conn:
            conn.execute(
                sa.select(_STUDIES.c.study_id).where(_STUDIES.c.study_id == owner).with_for_update()
            )
            rows = [{"number": -1, "study_id": owner, "state": TrialState.WAITING}] * count
            inserted = conn.execute(
                _TRIALS.insert().returning(_TRIALS.c.trial_id, sort_by_parameter_order=True),
                rows,
            )
            trial_ids = [int(r[0]) for r in inserted]
            first = conn.execute(
                sa.select(sa.func.count()).where(
                    _TRIALS.c.study_id == owner, _TRIALS.c.trial_id < trial_ids[0]
                )
            ).scalar_one()
            conn.execute(
                _TRIALS.update()
                .where(_TRIALS.c.trial_id == sa.bindparam("id"))
                .values(number=sa.bindparam("n")),
                [{"id": trial_id, "n": first + i} for i, trial_id in enumerate(trial_ids)],
            )
            made = [make(i, first + i) for i in range(count)]
            self._insert_queued(conn, trial_ids, made)

    def _insert_queued(
        self, conn: sa.Connection, trial_ids: Sequence[int], made: Sequence[Queued]
    ) -> None:
        """The parameter and user attribute rows of the queued trials ``trial_ids``."""
        params = [
            {
                "trial_id": trial_id,
                "param_name": name,
                "param_value": dists[name].to_internal_repr(value),
                "distribution_json": distribution_to_json(dists[name]),
            }
            for trial_id, (values, dists, _) in zip(trial_ids, made, strict=True)
            for name, value in values.items()
        ]
        attrs = [
            {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
            for trial_id, (_, _, user_attrs) in zip(trial_ids, made, strict=True)
            for key, value in user_attrs.items()
        ]
        if params:
            conn.execute(_PARAMS.insert(), params)
        if attrs:
            conn.execute(_USER_ATTRS.insert(), attrs)

    def start_next(self, ostudy: optuna.Study, carried: Collection[str]) -> FrozenTrial | None:
        """Start the next WAITING trial (RUNNING from now), with its user attributes named in
        ``carried``: a retry if one waits (an interrupted trial is redone before new ones), else
        the oldest; None if none waits.

        Concurrent poppers never take the same trial: on PostgreSQL the row is locked with
        ``SKIP LOCKED`` (a second popper takes the next one instead of waiting), and the update
        only moves a trial that is still WAITING. This is what ``Study.ask`` does to start an
        enqueued trial, without its retry loop over candidates.
        """
        # A retry is a WAITING trial with a ``retry_of`` attribute: probed per queued trial
        # through the attributes' (trial_id, key) index, never by joining the whole table
        retry = sa.exists().where(
            _USER_ATTRS.c.trial_id == _TRIALS.c.trial_id, _USER_ATTRS.c.key == "retry_of"
        )
        query = (
            sa.select(_TRIALS.c.trial_id, _TRIALS.c.number)
            .where(
                _TRIALS.c.study_id == schema.study_id(ostudy),
                _TRIALS.c.state == TrialState.WAITING,
            )
            .order_by(~retry, _TRIALS.c.trial_id)  # retries first, then the oldest
            .limit(1)
        )
        engine = self.store.optuna.engine
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=_TRIALS)
        with engine.begin() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            started = conn.execute(
                _TRIALS.update()
                .where(_TRIALS.c.trial_id == row.trial_id, _TRIALS.c.state == TrialState.WAITING)
                .values(state=TrialState.RUNNING, datetime_start=schema.optuna_now())
            )
            if started.rowcount != 1:
                return None
            stored = conn.execute(
                sa.select(_PARAMS.c.param_name, _PARAMS.c.param_value, _PARAMS.c.distribution_json)
                .where(_PARAMS.c.trial_id == row.trial_id)
                .order_by(_PARAMS.c.param_id)
            ).all()
            kept = conn.execute(
                sa.select(_USER_ATTRS.c.key, _USER_ATTRS.c.value_json).where(
                    _USER_ATTRS.c.trial_id == row.trial_id, _USER_ATTRS.c.key.in_(carried)
                )
            ).all()
        dists = {name: json_to_distribution(text) for name, _, text in stored}
        params = {name: dists[name].to_external_repr(value) for name, value, _ in stored}
        attrs = {key: json.loads(text) for key, text in kept}
        return frozen_trial(
            TrialState.RUNNING, int(row.number), int(row.trial_id), params, dists, user_attrs=attrs
        )
