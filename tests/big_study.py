"""A study with many thousands of trials, written straight into storage (for the dashboard's
large-study test and ``bench/dashboard.py``): a real finished search whose coarse stage then
gets ``extra`` more trials, bulk-inserted as Optuna itself would store them (params, value,
per-epoch intermediate values and history, stage attribute)."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import optuna
import sqlalchemy as sa
from optuna.distributions import FloatDistribution, distribution_to_json
from optuna.storages._rdb import models
from optuna.trial import TrialState

from hpsearch.local import run_search
from hpsearch.storage import Store
from tests.conftest import tiny_study

_FINITE = models.TrialValueModel.TrialValueType.FINITE
_FINITE_STEP = models.TrialIntermediateValueModel.TrialIntermediateValueType.FINITE


def write_big_study(url: str, name: str, extra: int, seed: int = 0) -> int:
    """Run a tiny search named ``name`` in ``url``, then add ``extra`` finished coarse trials.
    Returns the study's id."""
    run_search(tiny_study(name), url)
    store = Store(url)
    study = store.get_study(name)
    coarse = store.stage(study.id, "coarse")
    assert coarse is not None
    ranges = coarse.result["ranges"]
    dists = {
        "lr": FloatDistribution(ranges["lr"]["low"], ranges["lr"]["high"], log=True),
        "weight_decay": FloatDistribution(
            ranges["weight_decay"]["low"], ranges["weight_decay"]["high"], log=True
        ),
    }
    ostudy = optuna.load_study(study_name=f"{name}:coarse", storage=store.url)
    _insert(store, ostudy._study_id, dists, extra, random.Random(seed))
    store.update_stage(study.id, "coarse", result=coarse.result | {"trials": len(ostudy.trials)})
    store.close()
    return study.id


def _insert(
    store: Store, study_id: int, dists: dict[str, FloatDistribution], n: int, rng: random.Random
) -> None:
    tables = {m.__tablename__: m.__table__ for m in (
        models.TrialModel, models.TrialParamModel, models.TrialValueModel,
        models.TrialIntermediateValueModel, models.TrialUserAttributeModel,
    )}  # fmt: skip
    start = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    with store.optuna.engine.begin() as conn:
        first = conn.execute(
            sa.select(sa.func.count()).where(tables["trials"].c.study_id == study_id)
        ).scalar_one()
        rows, plans = [], []
        for i in range(n):
            pruned = rng.random() < 0.6
            epochs = rng.randint(1, 2) if pruned else 3
            params = {
                k: math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
                for k, d in dists.items()
            }
            peak = 0.95 - 0.05 * abs(math.log10(params["lr"] / 0.1))
            curve = [
                round(peak * (1 - 0.5 ** (e + 1)) + rng.uniform(-0.02, 0.02), 4)
                for e in range(epochs)
            ]
            began = start + timedelta(seconds=5 * i)
            rows.append({
                "number": first + i, "study_id": study_id,
                "state": TrialState.PRUNED if pruned else TrialState.COMPLETE,
                "datetime_start": began,
                "datetime_complete": began + timedelta(seconds=epochs * 1.5),
            })  # fmt: skip
            plans.append((params, curve))
        ids = [
            int(r[0])
            for r in conn.execute(
                tables["trials"]
                .insert()
                .returning(tables["trials"].c.trial_id, sort_by_parameter_order=True),
                rows,
            )
        ]
        conn.execute(tables["trial_params"].insert(), [
            {"trial_id": t, "param_name": k, "param_value": dists[k].to_internal_repr(v),
             "distribution_json": distribution_to_json(dists[k])}
            for t, (params, _) in zip(ids, plans, strict=True) for k, v in params.items()
        ])  # fmt: skip
        conn.execute(tables["trial_values"].insert(), [
            {"trial_id": t, "objective": 0, "value": curve[-1], "value_type": _FINITE}
            for t, (_, curve) in zip(ids, plans, strict=True)
        ])  # fmt: skip
        conn.execute(tables["trial_intermediate_values"].insert(), [
            {"trial_id": t, "step": e + 1, "intermediate_value": v,
             "intermediate_value_type": _FINITE_STEP}
            for t, (_, curve) in zip(ids, plans, strict=True) for e, v in enumerate(curve)
        ])  # fmt: skip
        conn.execute(tables["trial_user_attributes"].insert(), [
            {"trial_id": t, "key": key, "value_json": json.dumps(value)}
            for t, (_, curve) in zip(ids, plans, strict=True)
            for key, value in (
                ("stage", "coarse"),
                ("history", [{"epoch": e + 1, "val_accuracy": v} for e, v in enumerate(curve)]),
            )
        ])  # fmt: skip
