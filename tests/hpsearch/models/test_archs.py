"""The user's own model: torchvision architectures and ``python:MODULE:CALLABLE`` builders, from
the spec through the launch check to a whole search."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from hpsearch.catalog import DATASETS
from hpsearch.cli import main
from hpsearch.errors import HPSearchError, ModelError, ModuleNotAllowedError, SpecError
from hpsearch.local import run_search
from hpsearch.models import allow_modules, allowed_modules, build_model
from hpsearch.spec import ModelSpec, StudySpec, parse_spec
from hpsearch.stages import check_launch, estimate_memory
from tests.conftest import tiny_study
from tests.hpsearch.models import user_model

DIGITS, SHAPES = DATASETS["digits"], DATASETS["shapes"]
USER_CNN = "python:tests.hpsearch.models.user_model:small_cnn"


@pytest.fixture(autouse=True)
def nothing_allowed() -> Iterator[None]:
    """Every test starts and ends in a process that allows no module (the default)."""
    allow_modules(())
    yield
    allow_modules(())


def arch_study(name: str, model: dict[str, Any]) -> StudySpec:
    """A digits study with ``model`` and every model-independent technique on, shrunk so that a
    whole search takes a few dozen optimizer steps on small batches: 32 training images, one
    one-epoch trial, a one-epoch final training."""
    data = tiny_study(name).model_dump(mode="json")
    data["model"] = model
    data["dataset"]["train_subset"] = 32
    data["augment"] = {"translate": 1, "cutout": 2, "mixup_alpha": 0.2}
    techniques = {"label_smoothing": 0.1, "l2": 1e-5, "early_stopping_patience": 2}
    data["train"] |= {"batch_size": 16, "lr": 0.01, **techniques}
    data["search"]["lr"] = {"low": 1e-3, "high": 1e-2}  # a trial that diverges completes nothing
    data["recipe"] = {
        # a torchvision model keeps torchvision's init: the checks report what they see
        "sanity": {
            "initial_loss_batches": 1,
            "overfit_batches": 1,
            "overfit_steps": 3,
            "continue_on_failure": True,
        },
        "range_test": {"steps": 10, "check_iterations": 20},
        "coarse": {"trials": 1, "epochs": 1},
        "refine": {"rounds": 0},
        "final": {"epochs": 1, "early_stopping_patience": 1, "targeted_stage": False},
    }
    return parse_spec(data)


def assert_whole_search_ran(result: dict[str, Any]) -> None:
    stages = {stage["name"]: stage for stage in result["stages"]}
    assert result["state"] == "completed", result["message"]
    assert stages["sanity"]["result"]["checks"][0]["verdict"] != "head mismatch"
    assert stages["coarse"]["counts"]["complete"] == 1
    assert stages["final"]["status"] == "completed"
    assert 0.0 <= result["best"]["test_accuracy"] <= 1.0


def test_a_torchvision_resnet18_runs_a_whole_search(tmp_path: Path) -> None:
    spec = arch_study("resnet", {"arch": "torchvision:resnet18"})
    assert_whole_search_ran(run_search(spec, f"sqlite:///{tmp_path / 'db'}").json_data())


def test_a_python_model_runs_a_whole_search_locally_in_its_processes(tmp_path: Path) -> None:
    spec = arch_study("mine", {"arch": USER_CNN, "options": {"width": 12}})
    # two spawned processes: each is allowed the spec's own module, as this one is
    result = run_search(spec, f"sqlite:///{tmp_path / 'db'}", workers=2).json_data()
    assert_whole_search_ran(result)
    assert allowed_modules() == ()  # allowed for the run, and no longer


def test_hpsearch_train_builds_the_own_spec_s_python_model(tmp_path: Path) -> None:
    user_model.CALLS.clear()
    spec = arch_study("train-mine", {"arch": USER_CNN, "options": {"width": 6}})
    path = tmp_path / "mine.json"
    path.write_text(spec.model_dump_json())
    done = CliRunner().invoke(main, ["train", "--spec", str(path), "--epochs", "1", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1])["epochs"] == 1
    assert user_model.CALLS == [
        {"num_classes": 10, "in_channels": 1, "image_size": 8, "width": 6}
    ]  # the documented keyword arguments, and the spec's options
    assert allowed_modules() == ()


@pytest.mark.parametrize(("info", "side"), [(DIGITS, 8), (SHAPES, 32)])
def test_resnet18_takes_small_images_and_the_data_s_channels(info: Any, side: int) -> None:
    model = build_model(ModelSpec(arch="torchvision:resnet18"), info)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == info.channels
    assert (first.out_channels, first.kernel_size, first.stride) == (64, (7, 7), (2, 2))
    he_fan_out = math.sqrt(2 / (64 * 7 * 7))  # torchvision's init, kept for the adapted conv
    assert first.weight.std().item() == pytest.approx(he_fan_out, rel=0.1)
    x = torch.randn(4, info.channels, side, side)
    assert model(x).shape == (4, info.num_classes)
    assert model.training  # handed over as built, in training mode


def test_an_architecture_that_pools_the_images_away_is_refused_naming_arch_and_size() -> None:
    with pytest.raises(ModelError) as caught:
        build_model(ModelSpec(arch="torchvision:vgg11"), DIGITS)
    message = str(caught.value)
    assert "model.arch 'torchvision:vgg11'" in message
    assert "8x8 images" in message
    assert "\n" not in message


def test_a_python_model_outside_the_allowed_modules_is_refused_naming_the_flag() -> None:
    spec = ModelSpec(arch=USER_CNN)
    with pytest.raises(
        ModuleNotAllowedError, match=r"--allow-module tests\.hpsearch\.models\.user_model"
    ):
        build_model(spec, DIGITS)
    allow_modules(["tests.hpsearch.models.user"])  # a prefix ends at a dot: not ...user_model
    with pytest.raises(ModuleNotAllowedError):
        build_model(spec, DIGITS)
    allow_modules(["tests.hpsearch"])
    assert build_model(spec, DIGITS)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_allowed_prefixes_must_be_module_names() -> None:
    with pytest.raises(HPSearchError, match="not a module name"):
        allow_modules(["tests/hpsearch"])
    assert allowed_modules() == ()


@pytest.mark.parametrize(
    ("arch", "options", "expected"),
    [
        ("python:tests.hpsearch.missing:build", {}, "cannot import tests.hpsearch.missing"),
        ("python:tests.hpsearch.models.user_model:absent", {}, "user_model has no absent"),
        (USER_CNN, {"depth": 3}, "unexpected keyword argument 'depth'"),
        ("python:tests.hpsearch.models.user_model:not_a_model", {}, "returned a list"),
        ("python:tests.hpsearch.models.user_model:pools_everything_away", {}, "8x8 images"),
    ],
)
def test_a_python_model_that_cannot_be_built_is_a_one_line_error_naming_the_arch(
    arch: str, options: dict[str, Any], expected: str
) -> None:
    allow_modules(["tests.hpsearch"])
    with pytest.raises(ModelError) as caught:
        build_model(ModelSpec(arch=arch, options=options), DIGITS)
    message = str(caught.value)
    assert message.startswith(f"model.arch {arch!r}: ")
    assert expected in message
    assert "\n" not in message


def test_options_cannot_set_what_the_data_gives() -> None:
    with pytest.raises(SpecError, match=r"model\.options: num_classes: given by the data"):
        parse_spec({"model": {"arch": USER_CNN, "options": {"num_classes": 3}}})
    # a spec stored before the rule (read leniently) still cannot override the data
    allow_modules(["tests.hpsearch"])
    stored = ModelSpec.model_construct(arch=USER_CNN, options={"num_classes": 3})
    with pytest.raises(ModelError, match=r"model\.options cannot set num_classes"):
        build_model(stored, DIGITS)


@pytest.mark.parametrize("arch", ["torchvision:resnet18", USER_CNN])
def test_built_in_only_fields_are_refused_for_other_archs(arch: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"model": {"arch": arch, "widths": [8], "dropout": 0.1}})
    assert [path for path, _ in caught.value.problems] == ["model.widths"]
    assert "model.widths, model.dropout" in str(caught.value)
    assert arch in str(caught.value)


def test_an_unknown_torchvision_name_is_refused_at_launch_with_close_names() -> None:
    spec = arch_study("typo", {"arch": "torchvision:resnet19"})
    with pytest.raises(SpecError) as caught:
        check_launch(spec)
    problems = dict(caught.value.problems)
    assert "resnet19" in problems["model.arch"]
    assert "close names: resnet18" in problems["model.arch"]


def test_a_python_model_is_not_imported_at_launch_and_only_its_data_is_counted() -> None:
    spec = arch_study("remote", {"arch": "python:lives_on_the_workers.nets:build"})
    check_launch(spec)  # no import: the module exists on the workers only
    estimate = estimate_memory(spec)
    assert (estimate.weights, estimate.activations) == (0, 0)
    assert estimate.data > 0
    assert "weights and activations not counted" in estimate.describe()


@pytest.mark.parametrize("arch", ["torchvision:resnet18", USER_CNN])
def test_every_architecture_exports_for_serving(arch: str, tmp_path: Path) -> None:
    from hpsearch.data import load_data
    from hpsearch.trained import card_for, export_model, load_model, save_model

    allow_modules(["tests.hpsearch"])
    spec = arch_study("served", {"arch": arch})
    data = load_data(spec.dataset, spec.seed)
    card = card_for(spec, data, "final", [{}], "none", {})
    _, path = save_model(tmp_path, "m.pt", card, [build_model(spec.model, data.info)])
    model = load_model(path)
    program = torch.export.load(export_model(model, tmp_path / "m.pt2")).module()
    images = data.test.images[:5]
    assert torch.allclose(program(images), model.predict_proba(images), atol=1e-5)


def test_a_model_that_runs_out_of_memory_is_reported_as_memory_not_as_the_images() -> None:
    allow_modules(["tests.hpsearch"])
    with pytest.raises(ModelError) as caught:
        build_model(ModelSpec(arch="python:tests.hpsearch.models.user_model:too_hungry"), DIGITS)
    message = str(caught.value)
    assert "ran out of memory on one 8x8 image" in message
    assert "MemoryError" in message
    assert "cannot take" not in message
