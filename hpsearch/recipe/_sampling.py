"""Samplers and pruners for the search stages, built from the spec.

Any process may ask for the next trial, so a sampler cannot rely on a random stream that lives in
one process. :class:`PerTrialSeeded` gives every trial its own sampler seeded by (study seed, stage,
trial number): the same spec and seed give the same parameters for each trial number, whichever
process asks. Sobol (QMC) needs no such help: its position in the sequence is kept in the study.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, QMCSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial

from hpsearch.recipe._common import derived_seed


class PerTrialSeeded(BaseSampler):
    """Delegates each trial to a fresh sampler seeded by ``(seed, salt, trial number)``."""

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int, salt: str) -> None:
        self._factory = factory
        self._seed = seed
        self._salt = salt
        self._current: tuple[int, BaseSampler] | None = None

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        if self._current is None or self._current[0] != trial.number:
            seed = derived_seed(self._seed, self._salt, trial.number)
            self._current = (trial.number, self._factory(seed))
        return self._current[1]

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)


def make_sampler(kind: str, seed: int, stage: str) -> BaseSampler:
    """``random``, ``sobol`` (scrambled QMC) or ``tpe``, reproducible across processes."""
    if kind == "sobol":
        return QMCSampler(
            qmc_type="sobol",
            scramble=True,
            seed=derived_seed(seed, stage),
            warn_asynchronous_seeding=False,
            warn_independent_sampling=False,
        )
    if kind == "tpe":
        return PerTrialSeeded(lambda s: TPESampler(seed=s, n_startup_trials=5), seed, stage)
    return PerTrialSeeded(lambda s: RandomSampler(seed=s), seed, stage)


def make_pruner(kind: str, epochs: int) -> optuna.pruners.BasePruner:
    """Pruning on validation accuracy reported once per epoch (steps 1..epochs)."""
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(epochs, 2), reduction_factor=3
        )
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
