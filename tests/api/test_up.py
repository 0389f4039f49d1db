"""``hpsearch up`` (the server's package's command): a server and local workers, the study
followed to its end, and each way it can go wrong as one error line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, cast

from click.testing import CliRunner

from api.up import _follow
from hpsearch.cli import main
from hpsearch.cli._view import SearchView
from hpsearch.client import ServiceClient
from hpsearch.data import load_data
from hpsearch.protocol import StudyRead
from hpsearch.spec import load_spec
from tests.conftest import HPSEARCH, ROOT
from tests.hpsearch.cli.test_progress import LINES, SUMMARIES, not_a_terminal
from tests.hpsearch.trained.test_trained import write_split
from tests.workers.conftest import free_port


def test_up_serves_works_and_finishes_a_study_then_resumes_it(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/up.db"
    command = [
        HPSEARCH, "up", "--spec", "studies/digits.yaml", "--storage", storage,
        "--workers", "2", "--port", str(free_port()), "--log", str(tmp_path / "up.log"), "--json",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + (tmp_path / "up.log").read_text()[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["state"] == "completed"
    assert result["best"]["test_accuracy"] > 0.8
    log = (tmp_path / "up.log").read_text()
    assert "delivered (applied=True)" in log  # the work went through real workers
    for worker in ("up0", "up1"):  # both started; which of them did what is up to the race
        assert f"-{worker}] working on cpu for http://127.0.0.1:" in log, log[-3000:]
    # the same command again: the study is found finished, and nothing is redone
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1]) == result

    # the model the workers sent is the one that scored: downloaded, it classifies the test split
    # (written as an image folder) with the study's stored test accuracy, exactly
    model = tmp_path / "digits.pt"
    args = ["model", "download", "digits", "--storage", storage, "-o", str(model)]
    downloaded = CliRunner().invoke(main, args)
    assert downloaded.exit_code == 0, downloaded.output
    spec = load_spec("studies/digits.yaml")
    data = load_data(spec.dataset, spec.seed)
    folder = write_split(data.test, data.info.classes, tmp_path / "test")
    predicted = CliRunner().invoke(main, ["predict", "--model", str(model), str(folder), "--json"])
    assert predicted.exit_code == 0, predicted.output
    scored = json.loads(predicted.stdout.strip().splitlines()[-1])
    assert scored["labelled"] == len(data.test)
    assert scored["accuracy"] == result["best"]["test_accuracy"]


def test_a_bad_option_is_still_clicks_usage_error() -> None:
    result = CliRunner().invoke(main, ["up", "--spec", "digits", "--port", "0"])
    assert result.exit_code == 2
    assert "Error: Invalid value for '--port'" in result.stderr


def test_up_without_a_writable_log_is_an_error_line(tmp_path: Path) -> None:
    log = tmp_path / "no such folder" / "up.log"
    result = CliRunner().invoke(
        main, ["up", "--spec", "digits", "--workers", "1", "--log", str(log), "--json"]
    )
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write the log {log}: No such file or directory\n"
    assert json.loads(result.stdout)["error"]["message"].startswith("cannot write the log")


def test_up_says_why_its_server_exited(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    log.write_text("Error: an old run's last words\n")
    args = ["up", "--spec", "digits", "--storage", "nonsense://x", "--workers", "1"]
    result = CliRunner().invoke(main, [*args, "--port", str(free_port()), "--log", str(log)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the server exited with status ")
    assert "cannot open storage 'nonsense://x'" in result.stderr
    assert f"(its log: {log})" in result.stderr
    assert result.stderr.count("\n") == 1


class Replay(ServiceClient):
    """A client whose ``study`` answers are given in advance (an exception is raised)."""

    def __init__(self, answers: list[dict[str, Any] | Exception]) -> None:
        super().__init__("http://127.0.0.1:9")
        self.answers = iter(answers)

    def study(self, key: str | int) -> StudyRead:
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return cast(StudyRead, Answered(answer))


class Answered:
    """A study as the client answers it, made of a (partial) summary's JSON."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.state = data["state"]

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return self.data


def test_following_a_study_off_a_terminal_prints_a_line_per_stage_change() -> None:
    console, out = not_a_terminal()
    with Replay(SUMMARIES) as client, SearchView(console) as view:
        result = _follow(client, 1, view, poll_seconds=0)
    assert result["state"] == "completed"
    assert out.getvalue().splitlines() == LINES  # no table, nothing cut at the 60 columns
