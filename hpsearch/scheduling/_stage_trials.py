"""The Optuna side of the search stages: one Optuna study per stage, and its trials queued and
started (``_trial_rows``: their epochs recorded and their ends).

Every search trial is a plain Optuna trial, so ``optuna.load_study`` and optuna-dashboard read
them. The hot paths of a server (a claim creates a trial, every epoch reports one, a finish ends
one) go through Optuna's storage API rather than ``Study.ask`` / ``Trial`` / ``Study.tell``: those
rebuild whole trials from the database several times per call, which at a few dozen workers was
most of the server's time. What they would compute is computed the same way here: a random
trial's parameters come from the same seeded sampler (so the same spec and seed still give the
same parameters for each trial number), a pruned trial's value is its last intermediate value, and
the pruning decision is the study's own pruner's.

Reads that only need a state or a count are single SQL statements over Optuna's own tables.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Container, Mapping, Sequence
from datetime import timedelta
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.samplers import RandomSampler
from optuna.trial import FrozenTrial, TrialState

from hpsearch.recipe._common import derived_seed
from hpsearch.recipe._ranges import Range
from hpsearch.recipe._sampling import make_pruner, make_sampler
from hpsearch.recipe._trial_rows import TrialRows, frozen_trial
from hpsearch.spec import StudySpec
from hpsearch.storage import Store
from hpsearch.storage import optuna_schema as schema

_TRIALS = schema.TRIALS
_USER_ATTRS = schema.USER_ATTRS
_VALUES = schema.INTERMEDIATE_VALUES
_TRIAL_VALUES = schema.TRIAL_VALUES
_PARAMS = schema.PARAMS
_STUDIES = schema.STUDIES
STATE_NAMES: dict[TrialState, str] = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def optuna_name(study: str, stage: str) -> str:
    return f"{study}:{stage}"


def distributions(ranges: Mapping[str, Range]) -> dict[str, BaseDistribution]:
    out: dict[str, BaseDistribution] = {}
    for name, r in ranges.items():
        if r.integer:
            out[name] = IntDistribution(int(-(-r.low // 1)), int(r.high // 1), log=r.log)
        else:
            out[name] = FloatDistribution(r.low, r.high, log=r.log)
    return out


class StageTrials(TrialRows):
    """Optuna studies of one store's search stages, opened once per process and kept."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._studies: dict[tuple[int, str], optuna.Study] = {}
        self._opening = threading.Lock()

    def study(
        self, study_id: int, name: str, spec: StudySpec, stage: str, epochs: int
    ) -> optuna.Study:
        """The Optuna study ``<name>:<stage>`` (created on first use) with the spec's sampler
        and pruner. Our study ids are never reused, so caching by id cannot mix up studies."""
        key = (study_id, stage)
        with self._opening:  # one thread opens it; the others find it open
            if key not in self._studies:
                search = spec.recipe.coarse if stage == "coarse" else spec.recipe.refine
                ostudy = optuna.create_study(
                    study_name=optuna_name(name, stage),
                    storage=self.store.optuna,
                    sampler=make_sampler(search.sampler, spec.seed, stage),
                    pruner=make_pruner(search.pruner, epochs),
                    direction="maximize",
                    load_if_exists=True,
                )
                ostudy.set_user_attr("hpsearch_study", name)
                ostudy.set_user_attr("stage", stage)
                self._studies[key] = ostudy
            return self._studies[key]

    def forget(self, study_id: int) -> None:
        """Drop what is kept of a deleted study (Optuna may give its ids to new studies)."""
        with self._opening:
            gone = [self._studies.pop(k) for k in [k for k in self._studies if k[0] == study_id]]
        with self._lock:
            for ostudy in gone:
                self._complete.pop(schema.study_id(ostudy), None)

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

    # --- queueing and handing out --------------------------------------------------------------

    def enqueue(self, ostudy: optuna.Study, entries: Sequence[Queued]) -> None:
        """Queue trials (WAITING) with their parameters already set, so whoever starts one needs
        no sampler: a seeded first configuration, or a retry."""
        self._insert_waiting(ostudy, len(entries), lambda i, number: entries[i])

    def enqueue_random(
        self,
        ostudy: optuna.Study,
        spec: StudySpec,
        stage: str,
        ranges: Mapping[str, Range],
        count: int,
    ) -> None:
        """Queue ``count`` randomly sampled trials.

        Each is drawn as ``Study.ask`` would draw it: a random sampler seeded for the trial's
        number draws each parameter in turn, so the same spec and seed give the same parameters
        for each number, whichever process samples them.
        """
        dists = distributions(ranges)

        def sample(i: int, number: int) -> Queued:
            sampler = RandomSampler(seed=derived_seed(spec.seed, stage, number))
            stub = _template(TrialState.RUNNING, {}, {})
            params = {
                name: sampler.sample_independent(ostudy, stub, name, dist)
                for name, dist in dists.items()
            }
            return params, dists, {"stage": stage}

        self._insert_waiting(ostudy, count, sample)

    def _insert_waiting(
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

    def ask(self, ostudy: optuna.Study, stage: str, ranges: Mapping[str, Range]) -> FrozenTrial:
        """A new RUNNING trial sampled by the study's own sampler (TPE and Sobol learn from, or
        keep their place in, the study's trials, so they sample when a trial starts)."""
        trial = ostudy.ask(fixed_distributions=distributions(ranges))
        trial.set_user_attr("stage", stage)
        return _template(
            TrialState.RUNNING,
            trial.params,
            trial.distributions,
            trial.number,
            schema.trial_id(trial),
        )

    def pop(self, ostudy: optuna.Study) -> FrozenTrial | None:
        """Start the next WAITING trial (RUNNING from now): a retry if one waits (an interrupted
        trial is redone before new ones), else the oldest; None if none waits.

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
            carried = conn.execute(  # what the item needs of its attributes
                sa.select(_USER_ATTRS.c.key, _USER_ATTRS.c.value_json).where(
                    _USER_ATTRS.c.trial_id == row.trial_id,
                    _USER_ATTRS.c.key.in_([RESUME, CONTINUES]),
                )
            ).all()
        dists = {name: json_to_distribution(text) for name, _, text in stored}
        params = {name: dists[name].to_external_repr(value) for name, value, _ in stored}
        attrs = {key: json.loads(text) for key, text in carried}
        return _template(
            TrialState.RUNNING, params, dists, int(row.number), int(row.trial_id), attrs
        )

    def cancel_waiting(self, ostudy: optuna.Study, reason: str) -> None:
        """End the study's queued trials unstarted (FAIL, with ``reason``)."""
        self.end_unheld(ostudy, set(), reason, states=(TrialState.WAITING,))

    def end_unheld(
        self,
        ostudy: optuna.Study,
        held: Container[int],
        reason: str,
        states: tuple[TrialState, ...] = (TrialState.WAITING, TrialState.RUNNING),
    ) -> None:
        """Fail (not to be retried) the study's trials in ``states`` whose ids are not in
        ``held``."""
        query = sa.select(_TRIALS.c.trial_id).where(
            _TRIALS.c.study_id == schema.study_id(ostudy), _TRIALS.c.state.in_(states)
        )
        with self.store.optuna_reader.connect() as conn:
            ids = [int(r[0]) for r in conn.execute(query)]
        for trial_id in ids:
            if trial_id not in held:
                self.finish(trial_id, TrialState.FAIL, None, {"fail_reason": reason})


RESUME = "resume"
"""The user attribute of a retried trial whose run goes on from a checkpoint: ``{"trial_id",
"epoch", "sha256"}`` of the checkpoint (the trial that saved it)."""
CHECKPOINT = "checkpoint"
"""The user attribute of a running trial that saved a checkpoint: ``{"epoch", "sha256"}``."""
CONTINUES = "continues"
"""The user attribute of a trial that continues one of the round before: ``{"stage",
"number"}`` of that trial (its lineage); ``resume`` names the checkpoint it goes on from."""

Queued = tuple[dict[str, Any], dict[str, BaseDistribution], dict[str, Any]]
"""A trial to queue: its parameters, their distributions, its user attributes."""


def _template(
    state: TrialState,
    params: Mapping[str, Any],
    dists: Mapping[str, BaseDistribution],
    number: int = -1,
    trial: int = -1,
    user_attrs: Mapping[str, Any] | None = None,
) -> FrozenTrial:
    return frozen_trial(state, number, trial, params, dists, user_attrs=user_attrs)
