from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from hpsearch.cli import main
from tests.hpsearch.cli.test_run_command import write_spec
from tests.workers.conftest import TOKENS, ServerProcess


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


def test_stop_resume_and_delete_a_study_by_name_or_id(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path}/s.db", tmp_path / "server.log")
    server.start()
    try:
        spec = write_spec(tmp_path / "managed.json", name="managed")
        runner = CliRunner(env={"HPSEARCH_ADMIN_TOKEN": TOKENS["HPSEARCH_ADMIN_TOKEN"]})

        def hpsearch(*args: str, answer: str | None = None) -> Result:
            return runner.invoke(main, [*args, "--server", server.url], input=answer)

        assert hpsearch("launch", "--spec", str(spec)).exit_code == 0
        stopped = hpsearch("stop", "managed")
        assert stopped.exit_code == 0, stopped.output
        assert stopped.stdout == "stopped study 'managed' (id 1)\n"
        assert json.loads(hpsearch("status", "1", "--json").stdout)["state"] == "stopped"
        again = hpsearch("stop", "1")
        assert again.exit_code == 1
        assert (
            again.stderr
            == "error: cannot stop study 'managed' (id 1): it is stopped, not running\n"
        )

        resumed = hpsearch("resume", "1", "--json")
        assert resumed.exit_code == 0, resumed.output
        assert json.loads(resumed.stdout) == {"id": 1, "name": "managed", "state": "running"}
        twice = hpsearch("resume", "managed")
        assert twice.exit_code == 1
        assert (
            twice.stderr
            == "error: cannot resume study 'managed' (id 1): it is running, not stopped\n"
        )

        for answer in ("n\n", ""):  # no, and no answer at all (end of input)
            kept = hpsearch("delete", "managed", answer=answer)
            assert kept.exit_code == 1
            assert (
                "delete study 'managed' (id 1, running) and every trial of it? [y/N]" in kept.stderr
            )
            assert kept.stderr.endswith(
                "error: study 'managed' not deleted (--yes deletes without asking)\n"
            )
            assert kept.stdout == ""
        assert hpsearch("status", "managed").exit_code == 0
        deleted = hpsearch("delete", "managed", answer="y\n")
        assert deleted.exit_code == 0, deleted.output
        assert deleted.stdout == "deleted study 'managed' (id 1)\n"
        gone = hpsearch("status", "managed")
        assert gone.exit_code == 1
        assert "error: no study named 'managed'" in gone.stderr

        assert hpsearch("launch", "--spec", str(spec)).exit_code == 0
        by_json = hpsearch("delete", "2", "--yes", "--json")
        assert by_json.exit_code == 0, by_json.output
        assert json.loads(by_json.stdout) == {"id": 2, "name": "managed", "state": "deleted"}
        missing = hpsearch("delete", "2", "--yes")
        assert missing.exit_code == 1
        assert missing.stderr.startswith("error: ")
        assert "HTTP 404" in missing.stderr
    finally:
        server.stop()
