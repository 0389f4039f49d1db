"""The contract of ``hpsearch.storage.optuna_schema``: each name there, held to what Optuna's
public API says. An Optuna release that changes its tables, its encodings, where it keeps ids or
what a pruner reads fails here first (the module names the versions it was checked against)."""

from __future__ import annotations

import json
import math
from datetime import datetime

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import FloatDistribution, distribution_to_json
from optuna.pruners import MedianPruner
from optuna.storages import RDBStorage
from optuna.study import Study
from optuna.trial import TrialState

from hpsearch.storage import Store
from hpsearch.storage import optuna_schema as schema


@pytest.fixture
def storage(storage_url: str) -> RDBStorage:
    return Store(storage_url).optuna


def a_study(storage: RDBStorage, values: list[list[float]]) -> Study:
    """A study whose trials (one per curve) reported ``values`` and completed with the last."""
    study = optuna.create_study(
        study_name="contract", storage=storage, direction="maximize", pruner=MedianPruner(0, 0)
    )
    for curve in values:
        trial = study.ask({"lr": FloatDistribution(1e-4, 1.0, log=True)})
        trial.set_user_attr("stage", "coarse")
        for step, value in enumerate(curve, start=1):
            trial.report(value, step)
        study.tell(trial, curve[-1])
    return study


def test_ids_are_the_storage_s_own(storage: RDBStorage) -> None:
    study = a_study(storage, [[0.5], [0.6]])
    assert schema.study_id(study) == storage.get_study_id_from_name("contract")
    for trial in study.trials:
        by_number = storage.get_trial_id_from_study_id_trial_number(
            schema.study_id(study), trial.number
        )
        assert schema.trial_id(trial) == by_number
    asked = study.ask()
    assert schema.trial_id(asked) == study.trials[-1]._trial_id == asked._trial_id


def test_the_tables_hold_what_optuna_writes(storage: RDBStorage) -> None:
    study = a_study(storage, [[0.25, 0.5, 0.75]])
    trial = study.trials[0]
    tid = schema.trial_id(trial)
    with storage.engine.connect() as conn:
        row = conn.execute(sa.select(schema.TRIALS).where(schema.TRIALS.c.trial_id == tid)).one()
        assert (row.number, row.state, row.study_id) == (
            0,
            TrialState.COMPLETE,
            schema.study_id(study),
        )
        value = conn.execute(
            sa.select(schema.TRIAL_VALUES).where(schema.TRIAL_VALUES.c.trial_id == tid)
        ).one()
        assert schema.decode_value(value.value, value.value_type) == trial.value == 0.75
        steps = conn.execute(
            sa.select(schema.INTERMEDIATE_VALUES).where(
                schema.INTERMEDIATE_VALUES.c.trial_id == tid
            )
        ).all()
        decoded = {
            r.step: schema.decode_intermediate(r.intermediate_value, r.intermediate_value_type)
            for r in steps
        }
        assert decoded == trial.intermediate_values
        param = conn.execute(sa.select(schema.PARAMS).where(schema.PARAMS.c.trial_id == tid)).one()
        assert param.param_name == "lr"
        assert param.distribution_json == distribution_to_json(trial.distributions["lr"])
        assert trial.distributions["lr"].to_external_repr(param.param_value) == trial.params["lr"]
        attrs = conn.execute(
            sa.select(schema.USER_ATTRS).where(schema.USER_ATTRS.c.trial_id == tid)
        ).all()
        assert {a.key: json.loads(a.value_json) for a in attrs} == trial.user_attrs
        named = conn.execute(
            sa.select(schema.STUDIES.c.study_name).where(
                schema.STUDIES.c.study_id == schema.study_id(study)
            )
        ).scalar()
        assert named == "contract"


@pytest.mark.parametrize("value", [0.5, 0.0, math.inf, -math.inf, math.nan])
def test_values_are_encoded_as_optuna_encodes_them(storage: RDBStorage, value: float) -> None:
    study = a_study(storage, [[0.1]])
    trial = study.ask()
    trial.report(value, 1)
    tid = schema.trial_id(trial)
    with storage.engine.connect() as conn:
        stored = conn.execute(
            sa.select(
                schema.INTERMEDIATE_VALUES.c.intermediate_value,
                schema.INTERMEDIATE_VALUES.c.intermediate_value_type,
            ).where(schema.INTERMEDIATE_VALUES.c.trial_id == tid)
        ).one()
    assert tuple(stored) == schema.encode_intermediate(value)
    decoded = schema.decode_intermediate(*stored)
    read = storage.get_trial(tid).intermediate_values[1]
    assert decoded == read or (math.isnan(decoded) and math.isnan(read))
    if math.isfinite(value):  # a trial's value must be finite
        study.tell(trial, value)
        with storage.engine.connect() as conn:
            kept = conn.execute(
                sa.select(schema.TRIAL_VALUES.c.value, schema.TRIAL_VALUES.c.value_type).where(
                    schema.TRIAL_VALUES.c.trial_id == tid
                )
            ).one()
        assert tuple(kept) == schema.encode_value(value)


def test_the_clock_is_optuna_s(storage: RDBStorage) -> None:
    before = schema.optuna_now()
    trial = a_study(storage, [[0.5]]).trials[0]
    after = schema.optuna_now()
    assert trial.datetime_start is not None
    assert trial.datetime_start.tzinfo is None  # naive, as ours
    # Optuna's tables keep whole seconds on MySQL (DATETIME), microseconds elsewhere
    assert before.replace(microsecond=0) <= trial.datetime_start <= after
    assert abs((schema.optuna_now() - datetime.now()).total_seconds()) < 1.0


def test_a_median_pruner_decides_the_same_on_the_view(storage: RDBStorage) -> None:
    study = a_study(storage, [[0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.45, 0.55, 0.65]])
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    view = schema.PrunerView(completed)
    pruner = MedianPruner(n_startup_trials=0, n_warmup_steps=0)
    for curve in ([0.2], [0.48, 0.49], [0.9, 0.95, 0.99]):
        trial = study.ask()
        for step, value in enumerate(curve, start=1):
            trial.report(value, step)
        frozen = storage.get_trial(schema.trial_id(trial))
        assert pruner.prune(view, frozen) == pruner.prune(study, frozen)  # type: ignore[arg-type]
        study.tell(trial, state=TrialState.PRUNED)
    assert view.get_trials(states=(TrialState.RUNNING,)) == []
    assert view.direction == study.direction
