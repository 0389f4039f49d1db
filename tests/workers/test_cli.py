from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from hpsearch.models import allow_modules, allowed_modules
from workers import cli


class FakeChild:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command, self.env = command, env

    def wait(self) -> int:
        return 0


def fake_children(monkeypatch: pytest.MonkeyPatch) -> list[FakeChild]:
    """The worker processes the command starts, recorded instead of started."""
    started: list[FakeChild] = []

    def popen(command: list[str], env: dict[str, str]) -> Any:
        started.append(FakeChild(command, env))
        return started[-1]

    monkeypatch.setattr("workers.cli.subprocess.Popen", popen)
    return started


def test_each_gpu_gets_its_own_worker_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started = fake_children(monkeypatch)
    options = {
        "--server": "http://s:8000",
        "--max-trials": 3,
        "--spool": tmp_path,
        "--allow-module": ("mypkg.nets", "other"),
    }
    assert cli._processes_per_device(["0", "2"], 1, options, burst=True, worker_id="box") == 0
    assert [c.env["CUDA_VISIBLE_DEVICES"] for c in started] == ["0", "2"]
    for child in started:
        command = child.command
        assert command[1:5] == ["-m", "workers", "--devices", "0"]  # its one visible GPU
        assert command[command.index("--server") + 1] == "http://s:8000"
        assert command[command.index("--max-trials") + 1] == "3"
        assert command[command.index("--spool") + 1] == str(tmp_path)
        assert "--burst" in command
        allowed = [command[i + 1] for i, arg in enumerate(command) if arg == "--allow-module"]
        assert allowed == ["mypkg.nets", "other"]  # each child may build the same models
    ids = [c.command[c.command.index("--id") + 1] for c in started]
    assert ids == ["box-gpu0", "box-gpu2"]  # the same on every start


@pytest.mark.parametrize(
    ("gpus", "ids", "visible"),
    [
        (
            ["0", "1"],
            ["box-gpu0-0", "box-gpu0-1", "box-gpu1-0", "box-gpu1-1"],
            ["0", "0", "1", "1"],
        ),
        ([], ["box-cpu-0", "box-cpu-1"], [None, None]),
    ],
)
def test_slots_start_that_many_processes_per_device(
    monkeypatch: pytest.MonkeyPatch, gpus: list[str], ids: list[str], visible: list[str | None]
) -> None:
    """Two slots: two processes sharing each GPU; on a CPU two, each with half the cores."""
    started = fake_children(monkeypatch)
    monkeypatch.setattr("workers.cli.os.cpu_count", lambda: 8)
    options = {"--server": "http://s:8000"}
    assert cli._processes_per_device(gpus, 2, options, burst=False, worker_id="box") == 0
    assert [c.command[c.command.index("--id") + 1] for c in started] == ids
    assert [c.env.get("CUDA_VISIBLE_DEVICES") for c in started] == visible
    for child in started:
        devices = child.command[child.command.index("--devices") + 1]
        assert devices == ("0" if gpus else "cpu")
        assert "--slots" not in child.command  # each child is one slot
        assert child.env.get("OMP_NUM_THREADS") == (None if gpus else "4")


def test_a_cpu_worker_with_slots_starts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], int]] = []

    def fake(gpus: list[str], slots: int, *args: object, **kwargs: object) -> int:
        seen.append((gpus, slots))
        return 0

    monkeypatch.setattr("workers.cli._processes_per_device", fake)
    args = ["--server", "http://127.0.0.1:9", "--devices", "cpu", "--slots", "2"]
    done = CliRunner().invoke(cli.worker, args)
    assert done.exit_code == 0, done.output
    assert seen == [([], 2)]
    refused = CliRunner().invoke(cli.worker, [*args[:-1], "0"])
    assert refused.exit_code == 2
    assert "--slots" in refused.output


def test_gpu_lists_are_read_or_refused() -> None:
    assert cli._gpu_list("cpu") == []
    assert cli._gpu_list("0, 1") == ["0", "1"]
    with pytest.raises(click.BadParameter, match="GPU indices"):
        cli._gpu_list("first")


def test_allow_module_reaches_the_core_before_the_worker_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[tuple[str, ...]] = []

    class FakeWorker:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def install_signal_handlers(self) -> None:
            pass

        def run(self) -> int:
            seen.append(allowed_modules())  # what build_model will check in this process
            return 0

    monkeypatch.setattr("workers._daemon.Worker", FakeWorker)
    args = ["--server", "http://127.0.0.1:9", "--devices", "cpu", "--spool", str(tmp_path)]
    try:
        done = CliRunner().invoke(
            cli.worker, [*args, "--allow-module", "mypkg", "--allow-module", "lab.models"]
        )
        assert done.exit_code == 0, done.output
        assert seen == [("mypkg", "lab.models")]
        refused = CliRunner().invoke(cli.worker, [*args, "--allow-module", "my-pkg"])
        assert refused.exit_code == 2
        assert "--allow-module" in refused.output
        assert "'my-pkg' is not a module name" in refused.output
    finally:
        allow_modules(())
