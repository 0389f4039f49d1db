from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import optuna
from click.testing import CliRunner
from optuna.trial import TrialState

from hpsearch.cli import main
from hpsearch.storage import Store
from tests.conftest import HPSEARCH, ROOT, tiny_study, wait_until


def write_spec(path: Path, **sections: object) -> Path:
    path.write_text(json.dumps(tiny_study(**sections).model_dump(mode="json")))  # type: ignore[arg-type]
    return path


def test_the_digits_search_completes_with_97_percent_on_test(
    finished_digits: tuple[str, dict[str, Any]],
) -> None:
    _, result = finished_digits  # hpsearch run --spec studies/digits.yaml --json
    assert result["state"] == "completed"
    for stage in result["stages"]:
        assert stage["status"] in ("passed", "completed", "skipped"), stage["name"]
    assert result["best"]["test_accuracy"] >= 0.97
    assert set(result["best"]) == {"params", "val_accuracy", "test_accuracy", "objective", "value"}
    assert result["best"]["objective"] == "accuracy"
    assert result["best"]["value"] == result["best"]["val_accuracy"]
    assert result["diagnosis"]["verdict"]


def test_sigkill_during_the_coarse_stage_then_resume(storage_url: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "killme.json", name="killme", recipe={"coarse": {"epochs": 3}})
    command = [HPSEARCH, "run", "--spec", str(spec), "--storage", storage_url, "--json"]
    url = Store(storage_url).url
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        victim = _wait_for_a_trial_midway(url, "killme:coarse", process)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    killed = optuna.load_study(study_name="killme:coarse", storage=url).trials
    left_running = [t for t in killed if t.state == TrialState.RUNNING]
    assert victim in [t.number for t in left_running]

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert result["state"] == "completed"
    assert result["best"]["test_accuracy"] is not None
    coarse = optuna.load_study(study_name="killme:coarse", storage=url).trials
    summaries = optuna.get_all_study_summaries(url)
    assert {"killme:coarse", "killme:refine-1"} <= {s.study_name for s in summaries}
    for summary in summaries:
        trials = optuna.load_study(study_name=summary.study_name, storage=url).trials
        assert all(t.state != TrialState.RUNNING for t in trials)
    for dead in left_running:
        failed = coarse[dead.number]
        assert failed.state == TrialState.FAIL
        assert failed.user_attrs["fail_reason"].startswith("interrupted")
        retries = [t for t in coarse if t.user_attrs.get("retry_of") == dead.number]
        assert len(retries) == 1
        assert retries[0].params == dead.params
        assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    finished = [t for t in coarse if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 10  # the stage's full count, the retry included


def _wait_for_a_trial_midway(url: str, study: str, process: subprocess.Popen[bytes]) -> int:
    """The number of a coarse trial that has reported an epoch and is still running."""

    storage = optuna.storages.RDBStorage(url)  # one, not a pool of connections per look

    def midway() -> int | None:
        assert process.poll() is None, "the run ended before it could be killed"
        try:
            trials = optuna.load_study(study_name=study, storage=storage).trials
        except KeyError:  # the coarse stage has not started yet
            return None
        finished = [t for t in trials if t.state.is_finished()]
        running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        return running[0].number if len(finished) >= 2 and running else None

    return wait_until("a coarse trial running midway", midway, timeout=180, every=0.02)


def test_a_failing_study_exits_1_with_its_json(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "bad.json", name="bad", train={"lr": 1000.0})
    result = CliRunner().invoke(
        main, ["run", "--spec", str(spec), "--storage", f"sqlite:///{tmp_path}/b.db", "--json"]
    )
    assert result.exit_code == 1
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["state"] == "failed"
    assert "sanity checks failed: diverged" in summary["message"]
    assert "error: sanity checks failed" in result.stderr


def test_resuming_with_another_spec_is_refused(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "s.json", name="once", recipe={"coarse": {"trials": 1}, "refine": {"rounds": 0}}
    )
    storage = f"sqlite:///{tmp_path}/s.db"
    first = CliRunner().invoke(main, ["run", "--spec", str(spec), "--storage", storage])
    assert first.exit_code == 0, first.output
    assert "test accuracy" in first.stdout
    # not a terminal: a line per stage as it changes, no live table
    assert "hpsearch: sanity passed\nhpsearch: range_test passed\n" in first.stdout
    assert "hpsearch: coarse completed, best val 0." in first.stdout
    assert "┃ stage" not in first.stdout  # the live table's header
    assert "┃ class ┃ precision ┃ recall ┃ F1" in first.stdout  # the final per-class table
    second = CliRunner().invoke(
        main, ["run", "--spec", str(spec), "--storage", storage, "--set", "train.lr=0.3"]
    )
    assert second.exit_code == 1
    assert "different spec" in second.stderr


def test_an_unusable_storage_is_a_clear_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.json")
    result = CliRunner().invoke(main, ["run", "--spec", str(spec), "--storage", "nonsense://x"])
    assert result.exit_code == 1
    assert "cannot open storage 'nonsense://x'" in result.stderr
    assert "Traceback" not in result.output
