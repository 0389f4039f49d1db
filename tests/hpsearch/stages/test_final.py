"""The final stage's ensembles and test-time augmentation: snapshots are the run's best epochs,
an ensemble or a TTA is kept only if it raises the validation objective, and the saved files
reproduce what the stage stored."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from hpsearch.data import DataBundle
from hpsearch.models import build_model
from hpsearch.stages import run_final
from hpsearch.trained import load_model
from hpsearch.training import Trainer, predict_split, read_checkpoint
from tests.conftest import CPU, make_spec, tiny_study
from tests.hpsearch.training.test_checkpoint import KeepAll

CONFIGS = [
    {"train.lr": 0.1, "train.weight_decay": 1e-4},
    {"train.lr": 0.05, "train.weight_decay": 1e-3},
]


def test_snapshots_are_the_weights_of_the_best_epochs(digits_data: DataBundle) -> None:
    spec = make_spec(train={"epochs": 6, "lr": 0.1, "warmup_epochs": 0})
    result = Trainer(spec, digits_data, CPU).fit(snapshots=3)
    ranked = sorted(result.history, key=lambda m: (m.val_accuracy, -m.val_loss), reverse=True)
    assert [epoch for epoch, _ in result.snapshots] == [m.epoch for m in ranked[:3]]
    for epoch, state in result.snapshots:  # each is that epoch's model, as it was measured
        model = build_model(spec.model, digits_data.info)
        model.load_state_dict(state)
        _, correct = Trainer(spec, digits_data, CPU, model).evaluate(digits_data.val).tolist()
        assert correct / len(digits_data.val) == result.history[epoch - 1].val_accuracy


@pytest.mark.parametrize("kind", ["snapshots", "top_k"])
def test_an_ensemble_is_kept_only_if_it_helps_and_its_file_scores_what_was_stored(
    digits_data: DataBundle, tmp_path: Path, kind: str
) -> None:
    spec = tiny_study(
        "ens", recipe={"final": {"epochs": 6, "ensemble_top_k": 3, "ensemble": kind,
                                 "targeted_stage": False}},
    )  # fmt: skip
    final = run_final(spec, CONFIGS, digits_data, CPU, outbox=tmp_path).final
    ensemble = final.ensemble
    assert ensemble is not None
    assert ensemble.kind == kind
    assert ensemble.k == (3 if kind == "snapshots" else 2)  # top_k: as many configs as given
    if kind == "snapshots":
        assert [m.epoch for m in ensemble.members] == sorted(
            (m.epoch for m in ensemble.members),
            key=lambda e: (final.history[e - 1].val_accuracy, -final.history[e - 1].val_loss),  # type: ignore[operator]
            reverse=True,
        )
        assert ensemble.trial_epochs == 0  # no training beyond the final run
    assert ensemble.val_gain == pytest.approx(ensemble.val_value - final.val_value)  # type: ignore[operator]
    assert ensemble.kept == (ensemble.val_gain > 0)  # type: ignore[operator]
    if not ensemble.kept:
        assert ensemble.test_accuracy is None
        assert ensemble.model is None
    else:
        assert ensemble.model is not None
        for member in ensemble.members:  # and each member alone, beside the chosen model
            assert member.model is not None
            assert load_model(tmp_path / f"{member.model.sha256}.pt").card.kind == "member"
        model = load_model(tmp_path / f"{ensemble.model.sha256}.pt")
        predicted = model.predict(digits_data.test.images)
        correct = (predicted == digits_data.test.labels).sum().item()
        assert correct / len(digits_data.test) == ensemble.test_accuracy
    assert final.model is not None
    single = load_model(tmp_path / f"{final.model.sha256}.pt")
    correct = (single.predict(digits_data.test.images) == digits_data.test.labels).sum().item()
    assert correct / len(digits_data.test) == final.test_accuracy


def test_test_time_augmentation_is_kept_only_if_it_helps(digits_data: DataBundle) -> None:
    spec = tiny_study(
        "tta", recipe={"final": {"epochs": 3, "tta": "crops", "targeted_stage": False}}
    )
    final = run_final(spec, CONFIGS[:1], digits_data, CPU).final
    assert final.tta_gain is not None
    assert final.tta == ("crops" if final.tta_gain > 0 else "none")
    assert final.model is None  # no outbox: nothing saved


def test_a_flip_tta_is_refused_for_classes_a_mirror_changes() -> None:
    from hpsearch.errors import SpecError

    with pytest.raises(SpecError, match=r"recipe\.final\.tta: horizontal flips do not preserve"):
        make_spec(recipe={"final": {"tta": "flip"}})
    spec = make_spec(recipe={"final": {"tta": "crops"}})  # crops need no mirror: allowed
    assert spec.recipe.final.tta == "crops"


def test_crops_of_classes_a_mirror_changes_are_not_mirrored(digits_data: DataBundle) -> None:
    spec = make_spec(train={"eval_batch_size": 1000})  # one batch: every view counted once
    views: list[Tensor] = []

    def forward(x: Tensor) -> Tensor:
        views.append(x)
        return x.mean(dim=(2, 3)).expand(-1, 10)

    predict_split(forward, spec, digits_data, digits_data.val, "crops")
    assert len(views) == 5  # digits: four corners and the centre, no mirrors
    x = digits_data.normalize(digits_data.val.images)
    assert torch.equal(views[4], x)
    assert not any(torch.equal(v, x.flip(3)) for v in views)


class _Killed(BaseException):
    pass


def test_a_final_training_retried_goes_on_from_its_checkpoint(
    digits_data: DataBundle, tmp_path: Path
) -> None:
    spec = tiny_study(recipe={"final": {"epochs": 5, "early_stopping_patience": 5}})
    configs = [{"train.lr": 0.1, "train.weight_decay": 1e-4}]
    whole = run_final(spec, configs, digits_data, CPU).final

    def dies_at_3(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == 3:
            raise _Killed
        return False

    sink = KeepAll(tmp_path)
    with pytest.raises(_Killed):
        run_final(spec, configs, digits_data, CPU, dies_at_3, checkpoint=sink)
    reported: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reported.append(epoch)
        return False

    resumed = run_final(
        spec,
        configs,
        digits_data,
        CPU,
        report,
        resume=read_checkpoint(sink.saved[2]),
    ).final
    assert reported == [1, 2, 3, 4, 5]
    assert [(e.epoch, e.val_loss, e.train_loss) for e in resumed.history] == [
        (e.epoch, e.val_loss, e.train_loss) for e in whole.history
    ]
    assert resumed.test_accuracy == whole.test_accuracy
