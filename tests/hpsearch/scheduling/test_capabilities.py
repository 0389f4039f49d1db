"""Work goes to a worker that can do it: a study whose model is ``python:MODULE:...`` is handed
only to a worker that allows MODULE; with none such, it waits and says why, instead of failing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from hpsearch.cli.common import SearchView
from hpsearch.protocol import LeaseRead
from hpsearch.results import Outcome
from hpsearch.scheduling import Scheduler, StageMachine
from hpsearch.spec import parse_spec
from hpsearch.storage import Store
from hpsearch.views import summary
from tests.conftest import tiny_study
from workers.simulate import simulated_outcome

MODULE = "tests.hpsearch.models.user_model"
WAITING = f"waiting for a worker that allows module {MODULE}"


def test_a_python_model_waits_for_a_worker_that_allows_its_module(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'capable.db'}")
    body = tiny_study("own-model").model_dump(mode="json")
    spec = parse_spec(body | {"model": {"arch": f"python:{MODULE}:small_cnn"}})
    study = store.create_study(spec, driver="server")
    builtin = store.create_study(tiny_study("builtin"), driver="server")
    scheduler = Scheduler(StageMachine(store), 60.0)

    def claim(worker: str, modules: list[str]) -> LeaseRead | None:
        return scheduler.claim(worker, "host", ["cpu"], modules=modules)

    # only a worker that does not allow the module: it gets the other study's work, and the
    # study with the python: model waits, saying why
    other = claim("plain", [])
    assert other is not None
    assert other.item.study == "builtin"
    record = store.get_study(study.id)
    assert (record.state, record.message) == ("running", WAITING)
    assert store.get_study(builtin.id).message is None
    read = summary(scheduler.machine, study.id).model_dump(mode="json")
    assert read["message"] == WAITING  # the study page shows it
    console = Console(record=True, width=120)
    console.print(SearchView.render(read))
    assert WAITING in console.export_text()  # and hpsearch status
    scheduler.finish(other.id, "plain", Outcome(**simulated_outcome(other.item.to_dict())))

    # a worker allowing a prefix of it joins: it takes the study to its end; the plain worker
    # never gets an item of it meanwhile
    lease = claim("capable", ["tests.hpsearch"])
    assert lease is not None
    assert lease.item.study == "own-model"
    assert store.get_study(study.id).message is None  # no longer waiting
    while lease is not None:
        scheduler.finish(lease.id, "capable", Outcome(**simulated_outcome(lease.item.to_dict())))
        plain = claim("plain", ["tests.hpsearch.models.user"])  # not a prefix at a dot
        if plain is not None:
            assert plain.item.study == "builtin"
            scheduler.finish(plain.id, "plain", Outcome(**simulated_outcome(plain.item.to_dict())))
        lease = claim("capable", ["tests.hpsearch"])
        while lease is not None and lease.item.study != "own-model":
            scheduler.finish(
                lease.id, "capable", Outcome(**simulated_outcome(lease.item.to_dict()))
            )
            lease = claim("capable", ["tests.hpsearch"])
    assert store.get_study(study.id).state == "completed"
    store.close()
