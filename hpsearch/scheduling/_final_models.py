"""The final stage's model files, kept in the study's artifact store.

The final training is recorded as a trial of an Optuna study of its own (``<study>:final``):
its value is the validation objective of the weights kept, its intermediate values the
objective of each epoch, its hyperparameters and test metrics user attributes. The chosen
model's file is an artifact of that trial, an ensemble's file an artifact of that study, so
optuna-dashboard lists both on the study's page and serves them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Literal

import optuna
from optuna.artifacts import get_all_artifact_meta

from hpsearch.errors import ArtifactError, ArtifactNotFoundError, SpecError
from hpsearch.results import FinalResult, ModelFile, StageNote, stored_result
from hpsearch.scheduling._stage_trials import optuna_name
from hpsearch.spec import STUDY_PREFIX, StudySpec, spec_with
from hpsearch.storage import Store, StudyRecord
from hpsearch.uploads import PREFIX, DatasetStore, sha256_of

SHA_ATTR = "model_sha256"  # on the final trial: the sha256 of its model file


def resolve_init_from(store: Store, spec: StudySpec, datasets: Path | None = None) -> StudySpec:
    """``spec`` with a ``model.init_from: study:NAME`` replaced by that study's final model
    file: its path in ``store``'s artifacts (a local run), or, given ``datasets`` (a server's
    data directory), a copy kept there as ``sha256:<hex>``, which workers fetch as they fetch an
    uploaded dataset. :class:`SpecError` when the study or its model is not there."""
    init = spec.model.init_from
    if init is None or not init.startswith(STUDY_PREFIX):
        return spec
    name = init.removeprefix(STUDY_PREFIX)
    source = store.find_study(name)
    try:
        if source is None:
            raise ArtifactNotFoundError(f"no study named {name!r} here")
        file, path = stored_model(store, source, "final")
    except ArtifactError as exc:
        raise SpecError([("model.init_from", str(exc))], spec.name) from None
    if datasets is None:
        return spec_with(spec, {"model.init_from": str(path.resolve())})
    kept = DatasetStore(datasets)
    if not kept.has(file.sha256):
        datasets.mkdir(parents=True, exist_ok=True)
        copy = datasets / f".{file.sha256}.tmp"
        shutil.copyfile(path, copy)
        os.replace(copy, kept.file(file.sha256))
        kept.record(file.sha256, "model", f"{name}:{file.filename}", file.size)
    return spec_with(spec, {"model.init_from": PREFIX + file.sha256})


def keep_final_models(store: Store, study: StudyRecord, final: FinalResult) -> FinalResult:
    """Copy the final result's received model files into the store; the result naming them
    by their artifact ids (unchanged when it names no file)."""
    ensemble = final.ensemble
    if final.model is None and (ensemble is None or ensemble.model is None):
        return final
    ostudy = optuna.create_study(
        study_name=optuna_name(study.name, "final"),
        storage=store.optuna,
        direction="maximize",
        load_if_exists=True,
    )
    update: dict[str, object] = {}
    if final.model is not None:
        update["model"] = _kept_before(store, ostudy, final.model) or _keep_final(
            store, ostudy, final, final.model
        )
    if ensemble is not None and ensemble.model is not None:
        members = [
            m.model_copy(update={"model": _keep_on_study(store, ostudy, m.model)}) if m.model else m
            for m in ensemble.members
        ]
        kept = _keep_on_study(store, ostudy, ensemble.model)
        update["ensemble"] = ensemble.model_copy(update={"model": kept, "members": members})
    return final.model_copy(update=update)


def _keep_on_study(store: Store, ostudy: optuna.Study, file: ModelFile) -> ModelFile:
    return _kept_before(store, ostudy, file) or store.artifacts.keep(file, ostudy, store.optuna)


def _keep_final(
    store: Store, ostudy: optuna.Study, final: FinalResult, file: ModelFile
) -> ModelFile:
    # an artifact is recorded on a running trial: Optuna refuses to change a finished one
    trial = _final_trial(ostudy, final)
    kept = store.artifacts.keep(file, trial, store.optuna)
    trial.set_user_attr(SHA_ATTR, file.sha256)
    ostudy.tell(trial, final.val_value if final.val_value is not None else final.val_accuracy)
    return kept


def _kept_before(store: Store, ostudy: optuna.Study, file: ModelFile) -> ModelFile | None:
    """The file as kept by an earlier delivery of the same finish (one cut off before its
    answer), so that applying it again keeps nothing twice; None if it was not kept."""
    holders = [
        t for t in ostudy.get_trials(deepcopy=False) if t.user_attrs.get(SHA_ATTR) == file.sha256
    ]
    metas = [m for t in holders for m in get_all_artifact_meta(t, storage=store.optuna)]
    metas += [m for m in get_all_artifact_meta(ostudy) if m.filename == file.filename]
    for meta in metas:
        with contextlib.suppress(ArtifactError):
            path = store.artifacts.path(meta.artifact_id)
            if path.stat().st_size == file.size and sha256_of(path) == file.sha256:
                return file.model_copy(update={"artifact_id": meta.artifact_id})
    return None


def remove_study_models(store: Store, study: StudyRecord) -> None:
    """Delete every artifact of the study's final Optuna study and its trials (before that
    Optuna study is deleted)."""
    try:
        ostudy = optuna.load_study(
            study_name=optuna_name(study.name, "final"), storage=store.optuna
        )
    except KeyError:
        return
    metas = get_all_artifact_meta(ostudy)
    for trial in ostudy.get_trials(deepcopy=False):
        metas += get_all_artifact_meta(trial, storage=store.optuna)
    store.artifacts.remove([meta.artifact_id for meta in metas])


def _final_trial(ostudy: optuna.Study, final: FinalResult) -> optuna.Trial:
    """A running trial of ``ostudy`` with the final training's curve and attributes."""
    objective = final.objective or "accuracy"
    trial = ostudy.ask()
    for record in final.history:
        value = getattr(record, f"val_{objective}", None)
        if value is not None:
            trial.report(value, record.epoch)
    attrs: dict[str, object] = {
        "kind": "final",
        "params": final.params,
        "objective": objective,
        "test_accuracy": final.test_accuracy,
        "tta": final.tta,
    }
    if final.test_metrics is not None:
        attrs["test_" + objective] = getattr(final.test_metrics, objective)
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return trial


def stored_model(
    store: Store,
    study: StudyRecord,
    kind: Literal["final", "ensemble", "member"] = "final",
    member: int = 0,
) -> tuple[ModelFile, Path]:
    """The study's kept model file of ``kind`` (a member: the ensemble's ``member``-th, beside
    the chosen model) and where it lies; an :class:`ArtifactNotFoundError` saying why there is
    none."""
    record = store.stage(study.id, "final")
    if record is None or record.status != "completed":
        raise ArtifactNotFoundError(
            f"study {study.name} has no trained model: its final stage has not completed"
        )
    final = stored_result(FinalResult, record.result)
    if isinstance(final, StageNote):
        raise ArtifactNotFoundError(f"study {study.name}: {final.reason}")
    ensemble = final.ensemble
    file = final.model
    if kind == "ensemble":
        file = ensemble.model if ensemble else None
    elif kind == "member":
        members = ensemble.members if ensemble and ensemble.model else []
        file = members[member].model if 0 <= member < len(members) else None
    if file is None or file.artifact_id is None:
        what = {
            "final": "model file",
            "ensemble": "ensemble (none was asked for, or it did not beat the single model)",
            "member": f"ensemble member {member}",
        }[kind]
        raise ArtifactNotFoundError(f"study {study.name} kept no {what}")
    return file, store.artifacts.path(file.artifact_id)
