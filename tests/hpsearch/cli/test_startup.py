"""``hpsearch --help`` and a command given a bad spec answer at once: they load none of the
heavy libraries, and the plugin commands (``serve``, ``worker``) load only when they run."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
from click.testing import CliRunner

from hpsearch.cli import main
from hpsearch.cli._main import PLUGIN_GROUP, PLUGIN_HELP
from tests.conftest import ROOT

HEAVY = {"torch", "optuna", "sqlalchemy", "fastapi", "uvicorn", "httpx", "rich", "workers"}
# ``up`` is the server's package's command: loading it loads ``api`` (lightly), never its server


def modules_loaded_by(*commands: list[str]) -> tuple[list[int], set[str]]:
    """The exit codes of ``hpsearch COMMAND...`` run in a fresh interpreter, one after the
    other, and the top-level packages loaded by then."""
    script = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from hpsearch.cli import main\n"
        f"codes = [CliRunner().invoke(main, args).exit_code for args in {list(commands)!r}]\n"
        "print(json.dumps([codes, sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    codes, modules = json.loads(done.stdout)
    return codes, set(modules)


def test_help_loads_no_heavy_library_and_not_even_pydantic() -> None:
    codes, modules = modules_loaded_by(["--help"], ["up", "--help"], ["--version"])
    assert codes == [0, 0, 0]
    assert modules & (HEAVY | {"pydantic"}) == set()


def test_a_bad_spec_is_refused_before_any_heavy_library_loads(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("train:\n  lr: -1\n")
    commands = [[name, "--spec", str(spec)] for name in ("train", "run", "launch", "up")]
    codes, modules = modules_loaded_by(*commands, ["train", "--spec", "nonexistent"])
    assert codes == [2, 2, 2, 2, 2]
    assert modules & HEAVY == set()


def test_help_lists_the_plugin_commands_as_they_describe_themselves() -> None:
    listed = CliRunner().invoke(main, ["--help"], terminal_width=200).stdout
    plugins = {plugin.name: plugin for plugin in entry_points(group=PLUGIN_GROUP)}
    assert set(PLUGIN_HELP) <= set(plugins)
    for name, help_text in PLUGIN_HELP.items():
        command = plugins[name].load()
        assert isinstance(command, click.Command)
        assert command.get_short_help_str(limit=200) == help_text  # the stand-in is not stale
        assert f"  {name}  " in listed
        assert help_text in listed


def test_plugin_commands_still_run_through_hpsearch() -> None:
    shown = CliRunner().invoke(main, ["serve", "--help"])
    assert shown.exit_code == 0
    assert "--storage" in shown.stdout
    assert CliRunner().invoke(main, ["worker", "--help"]).exit_code == 0
    unknown = CliRunner().invoke(main, ["serv"])
    assert unknown.exit_code == 2
    assert "No such command 'serv'" in unknown.stderr
