"""Transfer learning: a model starts from a trained model's weights (``model.init_from``), with a
new head when the classes differ, and only its head trained with ``freeze: features``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from hpsearch.catalog import DatasetInfo
from hpsearch.data import DataBundle
from hpsearch.errors import SpecError
from hpsearch.local import run_search
from hpsearch.models import build_model
from hpsearch.spec import StudySpec, spec_with
from hpsearch.stages import check_launch, run_sanity
from hpsearch.storage import Store
from hpsearch.trained import (
    TRANSFER_LINEAR_BELOW,
    TransferError,
    card_for,
    chosen_freeze,
    save_model,
    start_from,
)
from hpsearch.training import Trainer
from tests.conftest import CPU, HPSEARCH, make_spec, tiny_study

SOURCE = make_spec(name="source", model={"widths": [8, 16], "norm": "batch"})


@pytest.fixture(scope="module")
def source_file(digits_data: DataBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits model trained a few epochs, saved as ``hpsearch model download`` gives it."""
    trained = Trainer(SOURCE, digits_data, CPU).fit(epochs=3)
    card = card_for(SOURCE, digits_data, "final", [{"train.lr": 0.1}], "none", {})
    _, path = save_model(tmp_path_factory.mktemp("source"), "final.pt", card, [trained.model])
    return path


def starting_from(path: Path | str, **model: object) -> StudySpec:
    return spec_with(
        SOURCE,
        {"name": "target", "model.init_from": str(path)}
        | {f"model.{k}": v for k, v in model.items()},
    )


def test_every_weight_comes_from_the_file_and_the_head_too_when_the_classes_match(
    source_file: Path, digits_data: DataBundle
) -> None:
    source = torch.load(source_file, weights_only=True)["weights"][0]
    trainer = Trainer(starting_from(source_file), digits_data, CPU)
    assert trainer.transfer is not None
    assert not trainer.transfer.new_head
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, source[key]), key
    assert all(p.requires_grad for p in trainer.model.parameters())  # freeze: none


def test_other_classes_get_a_new_head_and_frozen_features_stay_as_they_were(
    source_file: Path,
) -> None:
    spec = starting_from(source_file, freeze="features")
    five = DatasetInfo("five", 1, 8, ("a", "b", "c", "d", "e"), False, False)
    model = build_model(spec.model, five)
    head = model.get_submodule("head")
    assert isinstance(head, torch.nn.Linear)
    fresh_head = head.weight.detach().clone()
    transfer = start_from(model, spec.model, five, train_images=100)
    source = torch.load(source_file, weights_only=True)["weights"][0]
    assert transfer.new_head
    assert torch.equal(head.weight, fresh_head)  # its own, 5 outputs
    trained = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trained == ["head.weight", "head.bias"]
    features = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    assert all(torch.equal(v, source[k]) for k, v in features.items())

    # a few steps of training move the head only, batch-norm statistics included
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        model.train()
        transfer.hold()
        loss = torch.nn.functional.cross_entropy(
            model(torch.randn(16, 1, 8, 8)), torch.arange(16) % 5
        )
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in features.items())
    assert not torch.equal(head.weight, fresh_head)


def test_transfer_auto_follows_the_table_by_images_per_class() -> None:
    spec = make_spec(model={"init_from": "m.pt", "transfer": "auto"}).model
    few, many = 10 * (TRANSFER_LINEAR_BELOW - 1), 10 * TRANSFER_LINEAR_BELOW
    assert chosen_freeze(spec, few, 10)[0] == "features"  # very little data: linear on top
    assert chosen_freeze(spec, many, 10)[0] == "none"  # quite a lot: fine-tune
    assert "99 training images per class" in chosen_freeze(spec, few, 10)[1]


def test_the_sanity_checks_say_what_the_model_started_from(
    source_file: Path, digits_data: DataBundle
) -> None:
    spec = starting_from(source_file, transfer="auto")
    result, _ = run_sanity(spec, digits_data, CPU)
    initial = result.checks[0]
    assert initial.passed  # trained weights are not held to ln(C)
    assert "started from the final model of study source (its head)" in initial.advice
    assert "fine-tuned" in initial.advice  # ~1,250 digits: at least 100 per class


def test_a_file_that_does_not_fit_is_refused_at_launch_naming_the_field(
    source_file: Path, tmp_path: Path
) -> None:
    wider = spec_with(starting_from(source_file), {"model.widths": [16, 16]})
    with pytest.raises(SpecError, match=r"model.init_from: its layer .* is of shape"):
        check_launch(wider)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(source_file.read_bytes()[:2000])
    with pytest.raises(SpecError, match=r"model.init_from: .*cut off or corrupted"):
        check_launch(starting_from(broken))
    with pytest.raises(TransferError, match="cut off or corrupted"):
        start_from(
            build_model(SOURCE.model, DatasetInfo("d", 1, 8, tuple("0123456789"), False, False)),
            starting_from(broken).model,
            DatasetInfo("d", 1, 8, tuple("0123456789"), False, False),
            100,
        )


def test_hpsearch_run_with_a_corrupt_init_from_says_so_in_one_error_line(
    source_file: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: t\ndataset: {{name: digits}}\nmodel: {{init_from: {broken}}}\n")
    run = subprocess.run(
        [HPSEARCH, "run", "--spec", str(spec), "--storage", f"sqlite:///{tmp_path / 'db.sqlite'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "model.init_from: " in run.stderr
    assert "cut off or corrupted" in run.stderr


def test_a_study_starts_from_another_studys_model_by_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    tiny = {"widths": [8, 16], "norm": "batch"}
    assert run_search(tiny_study("teacher", model=tiny), url).state == "completed"
    student = tiny_study(
        "student", model=tiny | {"init_from": "study:teacher", "freeze": "features"}
    )
    done = run_search(student, url).json_data()
    assert done["state"] == "completed"
    sanity = next(s for s in done["stages"] if s["name"] == "sanity")
    advice = sanity["result"]["checks"][0]["advice"]
    assert "started from the final model of study teacher (its head), a linear classifier" in advice
    store = Store(url)
    stored = store.get_study("student").spec.model.init_from  # the teacher's model file
    assert stored is not None
    assert Path(stored).parent == store.artifacts.root.resolve()
    assert Path(stored).is_file()

    unknown = tiny_study("orphan", model=tiny | {"init_from": "study:nobody"})
    with pytest.raises(SpecError, match="no study named 'nobody'"):
        run_search(unknown, url)
