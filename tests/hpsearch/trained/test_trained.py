"""A trained model as a file: saved with what it needs, loaded as a module that takes raw images,
exactly what scored; a file that is not one is one clear error."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from hpsearch.cli import main
from hpsearch.data import DataBundle, Split
from hpsearch.errors import HPSearchError, ModelFileError
from hpsearch.trained import card_for, load_model, save_model
from hpsearch.trained._predict import predict_files
from hpsearch.training import Trainer
from tests.conftest import CPU, make_spec


def write_split(split: Split, classes: tuple[str, ...], root: Path) -> Path:
    """``split`` as an ImageFolder of PNG files (grey or colour), its pixels exactly."""
    for i, (image, label) in enumerate(zip(split.images, split.labels, strict=True)):
        folder = root / classes[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = image.numpy()
        picture = (
            Image.fromarray(pixels[0], "L")
            if len(pixels) == 1
            else Image.fromarray(pixels.transpose(1, 2, 0), "RGB")
        )
        picture.save(folder / f"{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def trained(
    digits_data: DataBundle, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Trainer, Path]:
    """A digits model trained for two epochs, and its file."""
    spec = make_spec(train={"epochs": 2, "eval_batch_size": 64})
    trainer = Trainer(spec, digits_data, CPU)
    trainer.fit()
    card = card_for(spec, digits_data, "final", [{"train.lr": 0.1}], "none", {"test_accuracy": 0.5})
    _, path = save_model(tmp_path_factory.mktemp("model"), "test-final.pt", card, [trainer.model])
    return trainer, path


def test_a_loaded_model_gives_the_probabilities_that_scored(
    trained: tuple[Trainer, Path], digits_data: DataBundle
) -> None:
    trainer, path = trained
    model = load_model(path)
    assert not model.training
    assert model.classes == list(digits_data.info.classes)
    expected = trainer.predict(digits_data.test)
    # the same arithmetic; only the kernels' rounding may differ with the memory they are given
    assert torch.allclose(model.predict_proba(digits_data.test.images), expected, atol=1e-6)
    assert torch.equal(model.predict(digits_data.test.images), expected.argmax(1))


def test_images_of_any_layout_and_size_are_fitted_like_the_training_data(
    trained: tuple[Trainer, Path], digits_data: DataBundle
) -> None:
    model = load_model(trained[1])
    image = digits_data.test.images[0]  # (1, 8, 8)
    one = model.predict_proba(image)
    for same in (
        image[0],  # (H, W)
        image.permute(1, 2, 0).numpy(),  # (H, W, C)
        image.expand(3, 8, 8),  # the same grey in colour, converted back exactly
    ):
        assert torch.allclose(model.predict_proba(same), one, atol=1e-6)
    big = torch.nn.functional.interpolate(image[None].float(), size=(16, 24)).to(torch.uint8)
    mixed = model.predict_proba([image, big[0]])  # several sizes at once
    assert mixed.shape == (2, 10)
    with pytest.raises(ValueError, match="uint8"):
        model.predict(image.float())


def test_an_ensemble_file_averages_its_members(
    trained: tuple[Trainer, Path], digits_data: DataBundle, tmp_path: Path
) -> None:
    first = trained[0]
    spec = make_spec(train={"epochs": 1}, seed=3)
    second = Trainer(spec, digits_data, CPU)
    second.fit()
    params = [{"train.lr": 0.1}, {"train.lr": 0.2}]
    card = card_for(spec, digits_data, "ensemble", params, "none", {})
    _, path = save_model(tmp_path, "e.pt", card, [first.model, second.model])
    model = load_model(path)
    both = first.predict(digits_data.test) + second.predict(digits_data.test)
    assert torch.allclose(model.predict_proba(digits_data.test.images), both / 2, atol=1e-6)


def test_predict_scores_an_image_folder_against_its_class_folders(
    trained: tuple[Trainer, Path], digits_data: DataBundle, tmp_path: Path
) -> None:
    trainer, path = trained
    folder = write_split(digits_data.test, digits_data.info.classes, tmp_path / "test")
    found = predict_files(load_model(path), [folder])
    predicted = trainer.predict(digits_data.test).argmax(1)
    correct = (predicted == digits_data.test.labels).sum().item()
    assert found.metrics is not None
    assert found.metrics.accuracy == correct / len(digits_data.test)  # every prediction the same
    assert len(found.paths) == len(digits_data.test)
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "x.png").write_bytes((folder / "3").iterdir().__next__().read_bytes())
    loose = predict_files(load_model(path), [tmp_path / "loose"])
    assert loose.metrics is None  # no class folder: classified, not scored
    (tmp_path / "loose" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(HPSearchError, match=r"broken\.png: cannot be decoded"):
        predict_files(load_model(path), [tmp_path / "loose"])


def test_an_exported_model_serves_uint8_images_without_hpsearch(
    trained: tuple[Trainer, Path], digits_data: DataBundle, tmp_path: Path
) -> None:
    exported = tmp_path / "served.pt2"
    done = CliRunner().invoke(main, ["model", "export", str(trained[1]), "-o", str(exported)])
    assert done.exit_code == 0, done.output
    assert "uint8 images (N, 1, 8, 8) in" in done.stdout
    program = torch.export.load(exported).module()  # torch alone
    images = digits_data.test.images[:37]  # any batch size
    expected = load_model(trained[1]).predict_proba(images)
    assert torch.allclose(program(images), expected, atol=1e-6)


def test_a_file_that_is_not_a_model_is_one_clear_error(
    trained: tuple[Trainer, Path], tmp_path: Path
) -> None:
    real = trained[1].read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(real[: len(real) // 2])
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    other = tmp_path / "other.pt"
    torch.save({"weights": [torch.zeros(2)]}, other)
    wrong = tmp_path / "wrong.pt"
    with zipfile.ZipFile(trained[1]) as z, zipfile.ZipFile(wrong, "w") as out:
        for item in z.infolist():  # every byte kept, but its record of the weights altered
            data = z.read(item)
            out.writestr(item, data.replace(b"hpsearch-model", b"hpsearch-mode!"))
    cases = {
        cut: "cut off or corrupted",
        text: "not a model file (not a PyTorch archive)",
        other: "not an hpsearch model file (no model card)",
        wrong: "its model card is invalid: format",
        tmp_path / "absent.pt": "no such file",
    }
    for path, words in cases.items():
        with pytest.raises(ModelFileError) as raised:
            load_model(path)
        assert str(raised.value).startswith(f"{path}: "), raised.value
        assert words in str(raised.value)
        images = tmp_path / "img"
        images.mkdir(exist_ok=True)
        Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(images / "a.png")
        result = CliRunner().invoke(main, ["predict", "--model", str(path), str(images)])
        assert result.exit_code == 1
        assert result.stderr == f"error: {raised.value}\n"


def test_members_of_searched_architectures_are_rebuilt_as_they_were(
    digits_data: DataBundle, tmp_path: Path
) -> None:
    from hpsearch.models import build_model
    from hpsearch.spec import spec_with

    spec = make_spec()
    params = [{"model.depth": 1.0, "train.lr": 0.1}, {"model.depth": 2.0, "train.lr": 0.1}]
    members = [build_model(spec_with(spec, p).model, digits_data.info) for p in params]
    card = card_for(spec, digits_data, "ensemble", params, "none", {})
    _, path = save_model(tmp_path, "e.pt", card, members)
    model = load_model(path)  # each member with its own depth: the weights fit
    sizes = [sum(p.numel() for p in m.parameters()) for m in model.members]
    assert sizes == [sum(p.numel() for p in m.parameters()) for m in members]
    assert sizes[0] < sizes[1]
