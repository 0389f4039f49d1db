from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from hpsearch.cli import main
from tests.conftest import HPSEARCH, ROOT
from tests.hpsearch.cli.test_run_command import write_spec
from tests.workers.conftest import TOKENS, ServerProcess, free_port


def test_up_serves_works_and_finishes_a_study_then_resumes_it(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "demo.json", name="demo")
    command = [
        HPSEARCH, "up", "--spec", str(spec), "--storage", f"sqlite:///{tmp_path}/up.db",
        "--workers", "2", "--port", str(free_port()), "--log", str(tmp_path / "up.log"), "--json",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + (tmp_path / "up.log").read_text()[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["state"] == "completed"
    assert result["best"]["test_accuracy"] > 0.8
    log = (tmp_path / "up.log").read_text()
    assert "delivered (applied=True)" in log  # the work went through real workers
    assert "-up0]" in log
    assert "-up1]" in log
    # the same command again: the study is found finished, and nothing is redone
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1]) == result


def test_launch_and_status_talk_to_a_server(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path}/s.db", tmp_path / "server.log")
    server.start()
    try:
        spec = write_spec(tmp_path / "remote.json", name="remote")
        env = {"HPSEARCH_ADMIN_TOKEN": TOKENS["HPSEARCH_ADMIN_TOKEN"]}
        runner = CliRunner(env=env)
        launched = runner.invoke(main, ["launch", "--spec", str(spec), "--server", server.url])
        assert launched.exit_code == 0, launched.output
        assert "launched study 'remote' (id 1)" in launched.output
        twice = runner.invoke(main, ["launch", "--spec", str(spec), "--server", server.url])
        assert twice.exit_code == 1
        assert "HTTP 409" in twice.stderr
        assert "already exists" in twice.stderr
        listed = runner.invoke(main, ["status", "--server", server.url])
        assert "remote" in listed.output
        assert "running" in listed.output
        one = runner.invoke(main, ["status", "remote", "--server", server.url, "--json"])
        assert json.loads(one.stdout)["state"] == "running"
        assert json.loads(one.stdout)["stages"][0]["name"] == "sanity"
        refused = CliRunner().invoke(main, ["status", "--server", server.url])  # no token
        assert refused.exit_code == 1
        assert "HTTP 401" in refused.stderr
    finally:
        server.stop()
    unreachable = CliRunner().invoke(main, ["status", "--server", server.url])
    assert unreachable.exit_code == 1
    assert f"cannot reach the server at {server.url}" in unreachable.stderr
