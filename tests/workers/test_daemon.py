"""The worker loop against a scripted server (no HTTP): whatever an item raises, whatever the
server answers short of refusing the token, the worker goes on and loses nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from hpsearch.client import Refused, Unreachable, UnreadableItem
from hpsearch.errors import CancelledError
from hpsearch.protocol import LeaseRead
from hpsearch.results import Outcome, WorkItem
from hpsearch.stages import _execute
from tests.conftest import tiny_study, wait_until
from workers import _daemon
from workers._daemon import Reporter, Worker
from workers._spool import Spool


class ScriptedServer:
    """A ProtocolClient stand-in: claims answered from a script, everything else recorded."""

    def __init__(self, claims: list[Any], worker_id: str = "w1") -> None:
        self.worker_id = worker_id
        self.claims = claims  # a lease dict, None (nothing to do), or an exception to raise
        self.reports: list[tuple[int, int, dict[str, float]]] = []
        self.finished: dict[int, dict[str, Any]] = {}
        self.report_failures: list[Exception] = []  # raised by the next reports, in turn
        self.uploads: list[tuple[int, str, bytes, str | None]] = []
        self.upload_failures: list[Exception] = []  # raised by the next uploads, in turn
        self.modules: list[str] = []  # what the last claim said the worker may import

    def claim(self, host: str, devices: list[str], modules: Sequence[str] = ()) -> LeaseRead | None:
        """The next answer of the script, read as the client reads the server's JSON."""
        self.modules = list(modules)
        answer = self.claims.pop(0) if self.claims else None
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            return None
        try:
            return LeaseRead.model_validate(answer)
        except ValidationError as exc:
            raise UnreadableItem(int(answer["id"]), exc) from None

    def report(self, item_id: int, epoch: int, metrics: dict[str, float]) -> bool:
        if self.report_failures:
            raise self.report_failures.pop(0)
        self.reports.append((item_id, epoch, metrics))
        return False

    def heartbeat(self, item_id: int) -> bool:
        return True

    def finish(self, item_id: int, outcome: Outcome, worker: str | None = None) -> bool:
        self.finished[item_id] = outcome.to_dict() | {"holder": worker}
        return True

    def upload_file(self, item_id: int, file: Path, sha256: str, worker: str | None = None) -> None:
        if self.upload_failures:
            raise self.upload_failures.pop(0)
        self.uploads.append((item_id, sha256, file.read_bytes(), worker))


def lease(item_id: int, kind: str = "trial") -> dict[str, Any]:
    spec = tiny_study().model_dump(mode="json")
    stage = "coarse" if kind == "trial" else kind
    item = WorkItem.model_validate(
        {"study_id": 1, "study": "tiny", "stage": stage, "kind": kind, "spec": spec}
    )
    return {"id": item_id, "lease_seconds": 60.0, "item": item.to_dict()}


@pytest.fixture
def worker_for(tmp_path: Path) -> Iterator[Callable[[ScriptedServer], Worker]]:
    spools: list[Spool] = []

    def make(server: ScriptedServer) -> Worker:
        spool = Spool(tmp_path / server.worker_id)
        spools.append(spool)
        client: Any = server
        return Worker(client, torch.device("cpu"), spool, burst=True, idle_seconds=0.01)

    yield make
    for spool in spools:
        spool.close()


def raising(exc: BaseException) -> Callable[[], Outcome]:
    def execute() -> Outcome:
        raise exc

    return execute


def test_an_item_that_raises_memory_error_fails_and_the_worker_goes_on(
    worker_for: Callable[[ScriptedServer], Worker],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import numpy as np

    server = ScriptedServer([lease(1, "sanity"), lease(2, "sanity"), lease(3, "sanity")])

    def numpy_out_of_memory() -> Outcome:
        np.empty((10**9, 2**20), np.float32)  # 3.7 PiB: numpy's _ArrayMemoryError, for real
        raise AssertionError("allocated 3.7 PiB")

    failures: list[Callable[[], Outcome]] = [
        raising(MemoryError("cannot allocate 150 GB")),
        numpy_out_of_memory,
        raising(MemoryError("cannot allocate 150 GB")),
    ]
    monkeypatch.setattr(_execute, "execute", lambda *args: failures.pop(0)())
    with caplog.at_level(logging.ERROR):
        done = worker_for(server).run()

    assert done == 3  # every item, then the worker is still there (burst: nothing left)
    assert server.finished[1]["state"] == "failed"
    assert server.finished[1]["reason"] == "MemoryError: cannot allocate 150 GB"
    assert server.finished[2]["reason"].startswith("MemoryError: Unable to allocate 3.73 PiB")
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 2  # the same failure again is one line
    lines = [r for r in caplog.records if "tiny/sanity failed: MemoryError" in r.getMessage()]
    assert len(lines) == 3  # a line each


def test_a_refused_claim_is_waited_out_unless_the_token_is_refused(
    worker_for: Callable[[ScriptedServer], Worker],
) -> None:
    server = ScriptedServer(
        [
            Refused("POST /api/trials/claim: HTTP 422: about one study", 422, "about one study"),
            Unreachable("down"),
        ]
    )
    assert worker_for(server).run() == 0  # waited, asked again, found nothing: burst ends it
    server = ScriptedServer(
        [Refused("POST /api/trials/claim: HTTP 401: invalid token", 401, "invalid token")], "w2"
    )
    with pytest.raises(Refused, match="401"):
        worker_for(server).run()


def test_a_report_answered_503_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_daemon, "REPORT_WAITS", (0.0, 0.0, 0.0))
    server = ScriptedServer([])
    server.report_failures = [Unreachable("HTTP 503: the database is unavailable")]
    import threading

    reporter = Reporter(server, 7, threading.Event())  # type: ignore[arg-type]
    assert reporter(1, {"val_accuracy": 0.5}) is False
    assert server.reports == [(7, 1, {"val_accuracy": 0.5})]
    assert reporter.unsent == {}


def test_an_epoch_the_server_could_not_take_goes_before_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_daemon, "REPORT_WAITS", (0.0,))
    server = ScriptedServer([])
    server.report_failures = [Unreachable("down"), Unreachable("still down")]
    import threading

    reporter = Reporter(server, 7, threading.Event())  # type: ignore[arg-type]
    assert reporter(1, {"val_accuracy": 0.5}) is False  # kept: both tries failed
    assert reporter.unsent == {1: {"val_accuracy": 0.5}}
    assert reporter(2, {"val_accuracy": 0.6}) is False
    assert [epoch for _, epoch, _ in server.reports] == [1, 2]  # in order, none lost


def test_a_stage_item_is_given_up_when_its_study_stops(
    worker_for: Callable[[ScriptedServer], Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ScriptedServer([lease(1, "range_test") | {"lease_seconds": 0.3}])
    server.heartbeat = lambda item_id: False  # type: ignore[method-assign]  # "study stopped"

    def execute(item: WorkItem, device: Any, report: Any, cancelled: Any, *_: Any) -> Outcome:
        # training steps, each asking the check, until the heartbeat's answer reaches it
        wait_until("the item to be told to give up", cancelled, timeout=10, every=0.05)
        raise CancelledError()  # what the next training step raises

    monkeypatch.setattr(_execute, "execute", execute)
    assert worker_for(server).run() == 1
    back = server.finished[1]
    assert (back["state"], back["retryable"]) == ("failed", True)  # handed back, to redo
    assert back["reason"].startswith("given up part-way")


def test_a_result_adopted_from_a_dead_workers_spool_is_delivered_as_its_holder(
    worker_for: Callable[[ScriptedServer], Worker], tmp_path: Path
) -> None:
    dead = Spool(tmp_path / "dead")
    dead.put(5, "dead", {"state": "completed", "value": 0.9})
    dead.close()
    server = ScriptedServer([])
    worker = worker_for(server)
    assert worker.spool.adopt_orphans() == 1
    worker.deliver_spool()
    assert server.finished[5]["holder"] == "dead"


def final_with_a_model(spool: Spool, content: bytes) -> dict[str, Any]:
    """A final outcome naming a model file, the file in the spool as the trainer leaves it."""
    import hashlib

    from workers.simulate import simulated_outcome

    digest = hashlib.sha256(content).hexdigest()
    spool.files.mkdir(exist_ok=True)
    spool.file(digest).write_bytes(content)
    outcome = simulated_outcome(lease(1, "final")["item"] | {"configs": [{"train.lr": 0.1}]})
    file = {"kind": "final", "filename": "tiny-final.pt", "sha256": digest, "size": len(content)}
    outcome["result"]["final"]["model"] = file
    return outcome


def test_model_files_go_before_the_finish_that_names_them_even_from_a_dead_worker(
    worker_for: Callable[[ScriptedServer], Worker], tmp_path: Path
) -> None:
    dead = Spool(tmp_path / "dead")
    dead.put(5, "dead", final_with_a_model(dead, b"weights"))
    dead.close()
    server = ScriptedServer([])
    worker = worker_for(server)
    assert worker.spool.adopt_orphans() == 1
    worker.deliver_spool()
    ((item, digest, sent, holder),) = server.uploads
    assert (item, sent, holder) == (5, b"weights", "dead")
    assert server.finished[5]["result"]["final"]["model"]["sha256"] == digest
    assert not worker.spool.file(digest).exists()  # delivered: the worker keeps no copy


def test_a_model_file_the_server_cannot_keep_fails_the_item_and_the_worker_goes_on(
    worker_for: Callable[[ScriptedServer], Worker],
) -> None:
    server = ScriptedServer([])
    worker = worker_for(server)
    worker.spool.put(3, "w1", final_with_a_model(worker.spool, b"weights"))
    detail = "the server cannot keep the model file: [Errno 28] No space left on device"
    server.upload_failures = [Refused(f"PUT: HTTP 507: {detail}", 507, detail)]
    worker.deliver_spool()
    back = server.finished[3]
    assert (back["state"], back["retryable"]) == ("failed", False)  # the study says why
    assert back["reason"] == f"the server did not keep the model file: {detail}"
    assert list(worker.spool.files.iterdir()) == []
    server.claims = [lease(4, "sanity")]
    assert worker.run() == 1  # and it goes on with the next item
