from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from hpsearch.cli import main

ROOT = Path(__file__).resolve().parents[3]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["train", *args])


def test_digits_run_from_the_console_script_reaches_97_percent() -> None:
    exe = shutil.which("hpsearch", path=str(Path(sys.executable).parent)) or "hpsearch"
    done = subprocess.run(
        [exe, "train", "--spec", "studies/digits.yaml", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["val_accuracy"] >= 0.97
    assert {"train_accuracy", "epochs", "seconds", "history"} <= set(result)
    assert len(result["history"]) == result["epochs"]
    assert set(result["history"][0]) == {
        "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds",
        "val_balanced_accuracy", "val_macro_f1", "val_roc_auc",
    }  # fmt: skip
    assert result["objective"] == "accuracy"
    assert result["val_value"] == result["val_accuracy"]


def test_people_get_a_table_per_epoch_and_a_summary() -> None:
    result = invoke("--spec", "digits", "--epochs", "2", "--set", "model.widths=[8, 16]")
    assert result.exit_code == 0, result.output
    assert "train loss" in result.stdout
    assert "val acc" in result.stdout
    assert "val accuracy" in result.stdout
    assert "2 epochs (all epochs run)" in result.stdout


def test_json_result_is_the_last_line_and_honours_overrides() -> None:
    result = invoke("--spec", "digits", "--epochs", "1", "--set", "train.lr=0.02", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 1
    assert summary["device"] == "cpu"


def test_divergence_is_a_message_not_a_traceback_or_nan() -> None:
    result = invoke("--spec", "digits", "--set", "train.lr=1000", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert error["type"] == "diverged"
    assert error["epoch"] == 1
    assert "error: training diverged at epoch 1" in result.stderr
    assert "Traceback" not in result.output
    assert "nan" not in result.output.lower()


def test_invalid_spec_names_each_field(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "train:\n  lr: -1\n  optimizer: adamax\nmodel:\n  dropout: 1.5\n  colour: red\n"
    )
    result = invoke("--spec", str(spec))
    assert result.exit_code == 2
    for field in ("train.lr", "train.optimizer", "model.dropout", "model.colour: unknown field"):
        assert field in result.stderr
    assert "Traceback" not in result.output


def test_spec_that_is_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    spec = tmp_path / "notes.yaml"
    spec.write_text("lr = 0.1\n: : [\n")
    result = invoke("--spec", str(spec), "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert error["type"] == "spec"
    assert "not valid YAML" in error["message"]


def test_missing_dataset_says_where_it_looked(tmp_path: Path) -> None:
    result = invoke(
        "--spec", "digits", "--set", "dataset.name=mnist", "--set", f"dataset.data_dir={tmp_path}"
    )
    assert result.exit_code == 1
    assert f"looked in {tmp_path}" in result.stderr
    assert "dataset.download" in result.stderr


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_asking_for_cuda_without_a_gpu_is_a_clear_error() -> None:
    result = invoke("--spec", "digits", "--device", "cuda")
    assert result.exit_code == 1
    assert "no usable CUDA GPU" in result.stderr
