from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from hpsearch.device import resolve_device
from hpsearch.protocol import LeaseRead
from hpsearch.results import Outcome
from tests.conftest import launch, tiny_study
from tests.workers.conftest import ADMIN, free_port
from workers import ProtocolClient, Spool, Worker
from workers.simulate import simulated_outcome

PASSED = simulated_outcome({"kind": "sanity"})  # made-up results of the sanity checks


def sanity_lease(server: str, study: str, worker: str) -> tuple[int, ProtocolClient, LeaseRead]:
    """Launch a study and claim its first item (the sanity checks) as ``worker``."""
    study_id = launch(httpx.Client(base_url=server), ADMIN, study)
    client = ProtocolClient(server, "worker-e2e", worker)
    lease = client.claim("here", ["cpu"])
    assert lease is not None
    assert lease.item.kind == "sanity"
    return study_id, client, lease


def test_a_result_the_server_cannot_take_waits_on_disk_until_it_can(
    server: str, tmp_path: Path
) -> None:
    study_id, online, lease = sanity_lease(server, "spooled", "w-spool")
    outcome = PASSED

    spool = Spool(tmp_path / "spool")
    spool.put(lease.id, "w-spool", outcome)
    offline = ProtocolClient(f"http://127.0.0.1:{free_port()}", "worker-e2e", "w-spool")
    Worker(offline, resolve_device("cpu"), spool).deliver_spool()  # the server is unreachable
    assert [item_id for item_id, _, _ in spool.pending()] == [lease.id]

    Worker(online, resolve_device("cpu"), spool).deliver_spool()  # it is back
    assert list(spool.pending()) == []
    stages = httpx.get(f"{server}/api/studies/{study_id}", headers=ADMIN).json()["stages"]
    assert stages[0]["name"] == "sanity"
    assert stages[0]["status"] == "passed"
    # delivered once; a resend is not applied
    assert not online.finish(lease.id, Outcome.from_dict(outcome))


def test_results_a_dead_worker_left_are_delivered_by_the_next_one(
    server: str, tmp_path: Path
) -> None:
    study_id, _, lease = sanity_lease(server, "orphaned", "w-old")
    outcome = PASSED
    root = tmp_path / "spool"
    dead = Spool(root / "w-old")
    dead.put(lease.id, "w-old", outcome)
    dead.close()  # the worker is gone (a killed process's lock goes with it)
    alive = Spool(root / "w-busy")
    alive.put(999_999, "w-busy", outcome)  # a running worker's own, not to be touched

    restarted = Spool(root / "w-new")
    assert restarted.adopt_orphans() == 1
    assert [(item_id, holder) for item_id, holder, _ in restarted.pending()] == [
        (lease.id, "w-old")  # delivered as the worker that claimed it
    ]
    assert [item_id for item_id, _, _ in alive.pending()] == [999_999]
    assert not (root / "w-old").exists()
    with pytest.raises(RuntimeError, match="in use by another worker"):
        Spool(root / "w-busy")  # the same id twice at once is refused
    successor = ProtocolClient(server, "worker-e2e", "w-new")
    Worker(successor, resolve_device("cpu"), restarted).deliver_spool()
    stages = httpx.get(f"{server}/api/studies/{study_id}", headers=ADMIN).json()["stages"]
    assert (stages[0]["name"], stages[0]["status"]) == ("sanity", "passed")


def test_a_failing_item_is_reported_with_its_reason_and_the_worker_carries_on(
    server: str, tmp_path: Path
) -> None:
    missing = {"name": "mnist", "data_dir": str(tmp_path / "no-data")}
    body = tiny_study("no-data", dataset=missing).model_dump(mode="json")
    study_id = httpx.post(f"{server}/api/studies", json=body, headers=ADMIN).json()["id"]
    client = ProtocolClient(server, "worker-e2e", "w-fail")
    worker = Worker(client, resolve_device("cpu"), Spool(tmp_path / "spool"), burst=True)
    assert worker.run() == 1  # the sanity item, failed; then nothing is left: burst exits
    study = httpx.get(f"{server}/api/studies/{study_id}", headers=ADMIN).json()
    assert study["state"] == "failed"
    assert "dataset 'mnist' not found" in study["message"]
    assert "dataset.download" in study["message"]


def test_a_wrong_token_is_a_message_not_a_traceback(server: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hpsearch.cli import main

    args = ["worker", "--server", server, "--token", "nope", "--devices", "cpu", "--burst"]
    result = CliRunner().invoke(main, [*args, "--spool", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert "refused the worker: HTTP 401: invalid token" in result.output
