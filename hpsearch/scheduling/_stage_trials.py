"""The Optuna side of the search stages: one Optuna study per stage, with the spec's sampler and
pruner, and its trials queued, sampled and started (their rows: ``hpsearch.storage.TrialQueue``,
which records their epochs and ends too).

Every search trial is a plain Optuna trial, so ``optuna.load_study`` and optuna-dashboard read
them. The hot paths of a server (a claim creates a trial, every epoch reports one, a finish ends
one) go through the store's own statements over Optuna's rows rather than ``Study.ask`` /
``Trial`` / ``Study.tell``: those rebuild whole trials from the database several times per call,
which at a few dozen workers was most of the server's time. What they would compute is computed
the same way: a random trial's parameters come from the same seeded sampler (so the same spec and
seed still give the same parameters for each trial number), a pruned trial's value is its last
intermediate value, and the pruning decision is the study's own pruner's.
"""

from __future__ import annotations

import threading
from collections.abc import Container, Mapping, Sequence
from typing import NamedTuple

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import RandomSampler
from optuna.trial import FrozenTrial, TrialState

from hpsearch.recipe import derived_seed, make_pruner, make_sampler
from hpsearch.spec import SearchRange, StudySpec
from hpsearch.storage import Queued, Store, TrialQueue, frozen_trial, optuna_trial_id

RESUME = "resume"
"""The user attribute of a retried trial whose run goes on from a checkpoint: ``{"trial_id",
"epoch", "sha256"}`` of the checkpoint (the trial that saved it)."""
CHECKPOINT = "checkpoint"
"""The user attribute of a running trial that saved a checkpoint: ``{"epoch", "sha256"}``."""
CONTINUES = "continues"
"""The user attribute of a trial that continues one of the round before: ``{"stage",
"number"}`` of that trial (its lineage); ``resume`` names the checkpoint it goes on from."""


def optuna_name(study: str, stage: str) -> str:
    return f"{study}:{stage}"


UNIT = FloatDistribution(0.0, 1.0)


class LrPrior(NamedTuple):
    """Where most of a round's randomly sampled values of ``name`` are drawn (``range``), and
    the share drawn from the round's whole range instead (recipe.range_test.outside_share)."""

    name: str
    range: SearchRange
    outside_share: float


def distributions(ranges: Mapping[str, SearchRange]) -> dict[str, BaseDistribution]:
    out: dict[str, BaseDistribution] = {}
    for name, r in ranges.items():
        if r.integer:
            out[name] = IntDistribution(int(-(-r.low // 1)), int(r.high // 1), log=r.log)
        else:
            out[name] = FloatDistribution(r.low, r.high, log=r.log)
    return out


class StageTrials(TrialQueue):
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
        self.forget_completed(gone)

    # --- queueing and handing out --------------------------------------------------------------

    def enqueue(self, ostudy: optuna.Study, entries: Sequence[Queued]) -> None:
        """Queue trials (WAITING) with their parameters already set, so whoever starts one needs
        no sampler: a seeded first configuration, or a retry."""
        self.insert_waiting(ostudy, len(entries), lambda i, number: entries[i])

    def enqueue_random(
        self,
        ostudy: optuna.Study,
        spec: StudySpec,
        stage: str,
        ranges: Mapping[str, SearchRange],
        count: int,
        prior: LrPrior | None = None,
    ) -> None:
        """Queue ``count`` randomly sampled trials.

        Each is drawn as ``Study.ask`` would draw it: a random sampler seeded for the trial's
        number draws each parameter in turn, so the same spec and seed give the same parameters
        for each number, whichever process samples them. With a ``prior``, its parameter is
        drawn from the prior's range except in ``prior.outside_share`` of the trials (the
        trial's distribution stays the round's whole range).
        """
        dists = distributions(ranges)
        inside = distributions({prior.name: prior.range}) if prior is not None else {}

        def sample(i: int, number: int) -> Queued:
            sampler = RandomSampler(seed=derived_seed(spec.seed, stage, number))
            stub = frozen_trial(TrialState.RUNNING)
            params = {
                name: sampler.sample_independent(ostudy, stub, name, dist)
                for name, dist in dists.items()
            }
            if prior is not None:
                draw = RandomSampler(seed=derived_seed(spec.seed, stage, number, "prior"))
                outside = draw.sample_independent(ostudy, stub, "u", UNIT) < prior.outside_share
                if not outside:
                    dist = inside[prior.name]
                    params[prior.name] = draw.sample_independent(ostudy, stub, prior.name, dist)
            return Queued(params, dists, {"stage": stage})

        self.insert_waiting(ostudy, count, sample)

    def ask(
        self, ostudy: optuna.Study, stage: str, ranges: Mapping[str, SearchRange]
    ) -> FrozenTrial:
        """A new RUNNING trial sampled by the study's own sampler (TPE and Sobol learn from, or
        keep their place in, the study's trials, so they sample when a trial starts)."""
        trial = ostudy.ask(fixed_distributions=distributions(ranges))
        trial.set_user_attr("stage", stage)
        return frozen_trial(
            TrialState.RUNNING,
            trial.number,
            optuna_trial_id(trial),
            trial.params,
            trial.distributions,
        )

    def pop(self, ostudy: optuna.Study) -> FrozenTrial | None:
        """Start the next WAITING trial (``TrialQueue.start_next``: a retry first, else the
        oldest), with what its item needs of its attributes: a retry's checkpoint, a continued
        trial's lineage. None if none waits."""
        return self.start_next(ostudy, carried=(RESUME, CONTINUES))

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
        for trial_id in self.trial_ids(ostudy, states):
            if trial_id not in held:
                self.finish(trial_id, TrialState.FAIL, None, {"fail_reason": reason})
