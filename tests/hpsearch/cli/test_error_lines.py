"""Every failure a command reports is one ``error:`` line with an exit status that says what
kind of failure it was; click's ``Error:`` is left to bad options."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hpsearch.cli import _main, main
from hpsearch.spec import StudySpec, load_spec
from tests.workers.conftest import free_port


@click.command()
def refuses() -> None:
    """A plugin command that refuses the way click commands do."""
    raise click.ClickException("the plugin refuses")


@click.command()
def interrupted() -> None:
    """A plugin command interrupted by Ctrl-C."""
    raise KeyboardInterrupt


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin commands of this module, and one whose module does not exist."""
    found = {
        name: EntryPoint(name, value, _main.PLUGIN_GROUP)
        for name, value in {
            "refuses": f"{__name__}:refuses",
            "interrupted": f"{__name__}:interrupted",
            "broken": "hpsearch_no_such_plugin:command",
        }.items()
    }
    monkeypatch.setattr(_main, "_plugins", lambda: found)


@pytest.mark.usefixtures("plugins")
@pytest.mark.parametrize(
    ("command", "status", "message"),
    [
        ("refuses", 1, "error: the plugin refuses\n"),
        ("interrupted", 130, "error: interrupted\n"),
        (
            "broken",
            1,
            "error: the 'broken' command (hpsearch_no_such_plugin:command) cannot be loaded: "
            "ModuleNotFoundError: No module named 'hpsearch_no_such_plugin'\n",
        ),
    ],
)
def test_a_plugin_command_fails_with_one_error_line(
    command: str, status: int, message: str
) -> None:
    result = CliRunner().invoke(main, [command])
    assert result.exit_code == status
    assert result.stderr == message
    assert result.stdout == ""


@pytest.mark.usefixtures("plugins")
def test_help_still_lists_the_commands_when_a_plugin_is_broken() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "broken       (unavailable: the 'broken' command" in result.stdout
    assert "refuses      A plugin command that refuses the way click commands do." in result.stdout


def test_serve_refusing_to_serve_is_an_error_line() -> None:
    result = CliRunner(env={"HPSEARCH_ADMIN_TOKEN": None, "HPSEARCH_WORKER_TOKEN": None}).invoke(
        main, ["serve", "--host", "0.0.0.0", "--port", str(free_port())]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: refusing to serve on 0.0.0.0 without tokens")
    assert result.stderr.count("\n") == 1


def test_a_bad_override_is_blamed_on_the_override_not_the_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["train", "--spec", "studies/digits.yaml", "--set", "train.lr=abc"]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: invalid study spec in studies/digits.yaml after --set:",
        "  train.lr: Input should be a valid number, unable to parse string as a number "
        "(got 'abc') (from --set train.lr=abc)",
    ]
    # the file's own problems stay the file's; a problem one override makes elsewhere is its
    spec = tmp_path / "bad.yaml"
    spec.write_text("train:\n  lr: -1\n")
    overrides = ["--set", "search.lr.low=5", "--set", "model.dropout=0.1"]
    mixed = CliRunner().invoke(main, ["launch", "--spec", str(spec), *overrides, "--json"])
    assert mixed.exit_code == 2
    problems = json.loads(mixed.stdout)["error"]["problems"]
    assert {"field": "train.lr", "message": "Input should be greater than 0 (got -1)"} in problems
    assert {
        "field": "search.lr.high",
        "message": "must be above low (5.0 >= 1.0) (from --set search.lr.low=5, "
        "--set model.dropout=0.1)",
    } in problems
    unchanged = CliRunner().invoke(main, ["launch", "--spec", str(spec), "--set", "seed=3"])
    assert unchanged.stderr.startswith(f"error: invalid study spec in {spec}:\n")
    assert "--set" not in unchanged.stderr


def test_an_override_inside_a_section_the_file_leaves_out_keeps_its_other_defaults(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "short.yaml"
    spec.write_text("name: short\n")  # no search section: the defaults
    loaded = load_spec(spec, ["search.lr.low=0.001"])
    assert loaded.search.lr.low == 0.001
    assert loaded.search.lr.high == StudySpec().search.lr.high
