"""Where hpsearch reaches past Optuna's public API: all of it, in this one module.

Checked against Optuna 4.5 and 5.0 (``pyproject.toml`` pins ``optuna>=4.5,<5.1``); a contract test
per name here (``tests/hpsearch/storage/test_optuna_schema.py``) holds it to what Optuna's public
API says, so a release that changes any of it fails there, not in a study.

- **Optuna's tables.** The hot paths of a server (a claim starts a trial, a report records an
  epoch, a finish ends a trial) and the paged reads of the dashboard write and read Optuna's RDB
  tables in core SQL: ``RDBStorage`` opens an ORM session and several round trips per call,
  which at a few dozen workers was most of a server's time. The rows are the ones Optuna writes.
- **How Optuna stores numbers**: a value or intermediate value and its kind (finite, inf, NaN).
- **The ids** a ``Study`` and a ``FrozenTrial`` keep privately.
- **The clock** of Optuna's timestamps (local time, naive).
- **What a median pruner reads of a study**: its direction and its completed trials.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime

import optuna
import sqlalchemy as sa
from optuna.storages._rdb import models
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

CHECKED_VERSIONS = ">=4.5,<5.1"

TRIALS: sa.Table = models.TrialModel.__table__
TRIAL_VALUES: sa.Table = models.TrialValueModel.__table__
INTERMEDIATE_VALUES: sa.Table = models.TrialIntermediateValueModel.__table__
PARAMS: sa.Table = models.TrialParamModel.__table__
USER_ATTRS: sa.Table = models.TrialUserAttributeModel.__table__
STUDIES: sa.Table = models.StudyModel.__table__


def study_id(study: optuna.Study) -> int:
    """The storage's id of ``study`` (what its trials' rows point to)."""
    return int(study._study_id)


def trial_id(trial: FrozenTrial | optuna.trial.Trial) -> int:
    """The storage's id of ``trial`` (unique across studies, unlike its number)."""
    return int(trial._trial_id)


ValueKind = models.TrialValueModel.TrialValueType
IntermediateKind = models.TrialIntermediateValueModel.TrialIntermediateValueType


def encode_value(value: float) -> tuple[float | None, ValueKind]:
    """A trial's value as its row stores it: (number, kind)."""
    return models.TrialValueModel.value_to_stored_repr(value)


def encode_intermediate(value: float) -> tuple[float | None, IntermediateKind]:
    """An intermediate value as its row stores it: (number, kind)."""
    return models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)


def decode_intermediate(stored: float | None, kind: IntermediateKind) -> float:
    """An intermediate value from its row."""
    decode = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
    return float(decode(stored, kind))


def decode_value(stored: float | None, kind: ValueKind) -> float:
    """A trial's value from its row."""
    return float(models.TrialValueModel.stored_repr_to_value(stored, kind))


def optuna_now() -> datetime:
    """Now as Optuna's tables keep time: the local time, naive (``RDBStorage`` stamps a trial's
    start and end with ``datetime.now()``)."""
    return datetime.now()


class PrunerView:
    """As much of a study as a median pruner reads: maximize, and its completed trials. Built
    from rows already read, instead of every unfinished trial rebuilt from the database."""

    direction = StudyDirection.MAXIMIZE

    def __init__(self, completed: list[FrozenTrial]) -> None:
        self._completed = completed

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        if states is not None and TrialState.COMPLETE not in states:
            return []
        return self._completed
