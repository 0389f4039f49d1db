from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

import hpsearch.training._trainer as trainer_module
from hpsearch.data import DataBundle, Split
from hpsearch.errors import DivergedError, ObjectiveUndefinedError
from hpsearch.metrics import label_scores, scores
from hpsearch.trained import crop_views, tta_probabilities
from hpsearch.training import Trainer
from tests.conftest import CPU, make_spec


def head_of(trainer: Trainer) -> nn.Linear:
    head = trainer.model.head
    assert isinstance(head, nn.Linear)
    return head


METRICS = {
    *("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"),
    *("val_balanced_accuracy", "val_macro_f1", "val_roc_auc"),
}


def test_every_epoch_reports_its_metrics_in_order(digits_data: DataBundle) -> None:
    seen: list[tuple[int, dict[str, float]]] = []

    def record(epoch: int, metrics: dict[str, float]) -> bool:
        seen.append((epoch, metrics))
        return False

    trainer = Trainer(make_spec(train={"epochs": 4}), digits_data, CPU)
    result = trainer.fit(report=record)
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert all(set(m) == METRICS for _, m in seen)
    assert [m.epoch for m in result.history] == [1, 2, 3, 4]
    assert result.history[-1].val_accuracy > 0.8
    assert result.stopped is None
    assert result.weights_epoch == 4
    assert all(m.seconds > 0 for m in result.history)


def test_the_epochs_validation_metrics_are_those_of_its_probabilities(
    digits_data: DataBundle,
) -> None:
    trainer = Trainer(make_spec(train={"epochs": 1}), digits_data, CPU)
    epoch = trainer.fit().history[0]
    probs = trainer.predict(digits_data.val).numpy()
    expected = scores(probs, digits_data.val.labels.numpy())
    assert epoch.val_accuracy == pytest.approx(expected["accuracy"])
    assert epoch.val_balanced_accuracy == pytest.approx(expected["balanced_accuracy"])
    assert epoch.val_macro_f1 == pytest.approx(expected["macro_f1"])
    assert epoch.val_roc_auc == pytest.approx(expected["roc_auc"])


def test_early_stopping_and_the_value_follow_the_objective(digits_data: DataBundle) -> None:
    # on digits' balanced classes the metrics rise together: ruin the weights from epoch 3 and
    # the best epoch by macro-F1 must be restored, and be the trial's value
    spec = make_spec(
        train={"epochs": 10, "early_stopping_patience": 2, "schedule": "constant"},
        search={"objective": "macro_f1"},
    )
    trainer = Trainer(spec, digits_data, CPU)
    result = trainer.fit(report=_ruin_from_epoch_3(trainer))
    f1 = [m.val_macro_f1 for m in result.history]
    assert result.stopped == "early_stopping"
    assert result.best_epoch == f1.index(max(f1)) + 1 == result.weights_epoch
    assert result.value == result.best_value == max(f1)
    assert result.summary()["objective"] == "macro_f1"


def test_roc_auc_is_left_out_of_epochs_of_a_large_split_unless_it_is_the_objective(
    digits_data: DataBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trainer_module, "EPOCH_ROC_AUC_LIMIT", 100)  # digits' is 10 x 228
    seen: list[dict[str, float]] = []

    def record(epoch: int, metrics: dict[str, float]) -> bool:
        seen.append(metrics)
        return False

    plain = Trainer(make_spec(train={"epochs": 1}), digits_data, CPU)
    epoch = plain.fit(report=record).history[0]
    assert epoch.val_roc_auc is None
    assert "val_roc_auc" not in seen[0]
    # the other metrics come from the predicted classes alone
    predicted = plain.predict(digits_data.val).argmax(1).numpy()
    expected = label_scores(predicted, digits_data.val.labels.numpy())
    assert epoch.val_macro_f1 == pytest.approx(expected["macro_f1"])
    assert epoch.val_balanced_accuracy == pytest.approx(expected["balanced_accuracy"])
    spec = make_spec(train={"epochs": 1}, search={"objective": "roc_auc"})
    assert Trainer(spec, digits_data, CPU).fit().history[0].val_roc_auc is not None


def test_roc_auc_on_a_validation_split_of_one_class_is_refused(digits_data: DataBundle) -> None:
    keep = digits_data.val.labels == 3
    val = Split(digits_data.val.images[keep], digits_data.val.labels[keep])
    data = dataclasses.replace(digits_data, val=val)
    assert Trainer(make_spec(train={"epochs": 1}), data, CPU).fit().history[0].val_roc_auc is None
    spec = make_spec(train={"epochs": 1}, search={"objective": "roc_auc"})
    with pytest.raises(ObjectiveUndefinedError, match="one class"):
        Trainer(spec, data, CPU).fit()


def _ruin_from_epoch_3(trainer: Trainer) -> Callable[[int, dict[str, float]], bool]:
    def sabotage(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch >= 3:  # from now on every epoch ends with ruined weights
            with torch.no_grad():
                for p in head_of(trainer).parameters():
                    p.add_(torch.randn_like(p) * 5)
        return False

    return sabotage


def test_report_returning_true_stops_the_run(digits_data: DataBundle) -> None:
    trainer = Trainer(make_spec(train={"epochs": 6}), digits_data, CPU)
    result = trainer.fit(report=lambda epoch, metrics: epoch == 2)
    assert len(result.history) == 2
    assert result.stopped == "report"


def test_early_stopping_restores_the_best_epochs_weights(digits_data: DataBundle) -> None:
    spec = make_spec(train={"epochs": 12, "early_stopping_patience": 2, "schedule": "constant"})
    trainer = Trainer(spec, digits_data, CPU)
    result = trainer.fit(report=_ruin_from_epoch_3(trainer))
    assert result.stopped == "early_stopping"
    assert len(result.history) < 12
    best = result.history[result.best_epoch - 1]
    assert best.val_accuracy == max(m.val_accuracy for m in result.history)
    assert result.weights_epoch == best.epoch
    assert result.history[-1].val_accuracy < best.val_accuracy
    _, correct = trainer.evaluate(digits_data.val).tolist()
    assert correct / len(digits_data.val) == pytest.approx(best.val_accuracy)
    assert result.val_accuracy == best.val_accuracy


def test_far_too_high_lr_raises_diverged_with_the_epoch(digits_data: DataBundle) -> None:
    trainer = Trainer(make_spec(train={"lr": 1000.0}), digits_data, CPU)
    with pytest.raises(DivergedError) as info:
        trainer.fit()
    assert info.value.epoch == 1
    assert "train.lr = 1000" in str(info.value)
    assert "nan" not in str(info.value).lower()


def test_nan_weights_raise_diverged_naming_the_epoch(digits_data: DataBundle) -> None:
    trainer = Trainer(make_spec(train={"epochs": 5}), digits_data, CPU)

    def poison(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == 2:
            with torch.no_grad():
                head_of(trainer).weight.fill_(math.nan)
        return False

    with pytest.raises(DivergedError, match="epoch 3: the training loss is nan"):
        trainer.fit(report=poison)


def test_label_smoothing_makes_predictions_less_confident(digits_data: DataBundle) -> None:
    def confidence(smoothing: float) -> float:
        trainer = Trainer(
            make_spec(train={"epochs": 5, "label_smoothing": smoothing}), digits_data, CPU
        )
        trainer.fit()
        trainer.model.eval()
        with torch.no_grad():
            probs = trainer.model(digits_data.normalize(digits_data.val.images)).softmax(1)
        return float(probs.max(1).values.mean())

    assert confidence(0.3) < confidence(0.0) - 0.1


def test_flip_tta_averages_the_image_and_its_mirror(digits_data: DataBundle) -> None:
    trainer = Trainer(make_spec(train={"epochs": 1}), digits_data, CPU)
    trainer.fit()
    loss_sum, correct = trainer.evaluate(digits_data.val, tta="flip").tolist()
    trainer.model.eval()
    x = digits_data.normalize(digits_data.val.images)
    with torch.no_grad():
        probs = (trainer.model(x).softmax(1) + trainer.model(x.flip(3)).softmax(1)) / 2
    labels = digits_data.val.labels
    assert correct == (probs.argmax(1) == labels).sum().item()
    expected = -probs.log().gather(1, labels[:, None]).sum().item()
    assert loss_sum == pytest.approx(expected, rel=1e-4)
    plain_loss, _ = trainer.evaluate(digits_data.val).tolist()
    assert plain_loss != pytest.approx(loss_sum)


def test_crop_tta_averages_the_four_corners_and_the_centre_of_the_padded_image() -> None:
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    views = crop_views(x, padding=1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    assert [tuple(v.shape) for v in views] == [(2, 3, 4, 4)] * 5
    assert torch.equal(views[0], padded[..., 0:4, 0:4])  # top left
    assert torch.equal(views[1], padded[..., 0:4, 2:6])  # top right
    assert torch.equal(views[2], padded[..., 2:6, 0:4])  # bottom left
    assert torch.equal(views[3], padded[..., 2:6, 2:6])  # bottom right
    assert torch.equal(views[4], x)  # the centre is the image itself
    seen: list[Tensor] = []

    def forward(batch: Tensor) -> Tensor:
        seen.append(batch)
        return batch.mean(dim=(2, 3))  # three "classes": the channels' means

    probs = tta_probabilities(forward, x, "crops", flips=True, padding=1)
    assert len(seen) == 10  # five crops, each followed by its mirror
    mirrored = [v.flip(3) for v in views]
    for view, image in zip(seen[0::2] + seen[1::2], views + mirrored, strict=True):
        assert torch.equal(view, image)
    expected = torch.stack([forward(v).softmax(1) for v in views + mirrored]).mean(0)
    assert torch.allclose(probs, expected, atol=1e-6)
    seen.clear()
    tta_probabilities(forward, x, "crops", flips=False, padding=1)
    assert len(seen) == 5  # no mirrors for classes a mirror would change


def test_mixup_training_uses_soft_targets_and_still_learns(digits_data: DataBundle) -> None:
    spec = make_spec(train={"epochs": 4}, augment={"mixup_alpha": 0.2, "cutmix_alpha": 1.0})
    trainer = Trainer(spec, digits_data, CPU)
    _, _, targets = next(iter(trainer.batches.epoch()))
    assert targets is not None
    assert torch.allclose(targets.sum(1), torch.ones(len(targets)))
    assert trainer.fit().val_accuracy > 0.7


def test_same_seed_same_run(digits_data: DataBundle) -> None:
    spec = make_spec(train={"epochs": 2}, augment={"translate": 1}, model={"dropout": 0.2})
    first = Trainer(spec, digits_data, CPU).fit().history
    second = Trainer(spec, digits_data, CPU).fit().history
    assert [m.train_loss for m in first] == [m.train_loss for m in second]
    assert [m.val_accuracy for m in first] == [m.val_accuracy for m in second]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_uses_bf16_channels_last_and_learns(digits_data: DataBundle) -> None:
    from hpsearch.data import load_data
    from hpsearch.device import resolve_device

    device = resolve_device("cuda")
    spec = make_spec(train={"epochs": 4})
    data = load_data(spec.dataset, spec.seed, device)
    trainer = Trainer(spec, data, device)
    x, _, _ = next(iter(trainer.batches.epoch()))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with trainer.autocast():
        assert trainer.model(x).dtype == torch.bfloat16
    assert torch.backends.cudnn.benchmark
    assert trainer.fit().val_accuracy > 0.8
