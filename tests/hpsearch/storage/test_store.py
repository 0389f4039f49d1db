from __future__ import annotations

import pytest

from hpsearch.errors import StorageError, StudyExistsError, StudyNotFoundError
from hpsearch.storage import Store
from tests.conftest import make_spec


def test_study_round_trips_with_its_spec(storage_url: str) -> None:
    store = Store(storage_url)
    spec = make_spec(name="alpha", train={"lr": 0.07})
    created = store.create_study(spec)
    assert created.state == "running"
    found = store.get_study("alpha")
    assert found.spec == spec
    assert store.get_study(created.id).name == "alpha"
    with pytest.raises(StudyExistsError, match="'alpha' already exists"):
        store.create_study(spec)
    with pytest.raises(StudyNotFoundError):
        store.get_study("beta")
    store.close()


def test_a_single_stage_is_claimed_once(storage_url: str) -> None:
    store = Store(storage_url)
    study = store.create_study(make_spec(name="claims"))
    other = Store(storage_url)  # a second driver on the same database
    assert store.claim_stage(study.id, "sanity", 0)
    assert not other.claim_stage(study.id, "sanity", 0)
    store.update_stage(study.id, "sanity", status="pending")  # reopened after a crash
    assert other.claim_stage(study.id, "sanity", 0)
    assert not store.claim_stage(study.id, "sanity", 0)
    store.close()
    other.close()


def test_compute_adds_up_from_two_connections(storage_url: str) -> None:
    store, other = Store(storage_url), Store(storage_url)
    study = store.create_study(make_spec(name="compute"))
    store.start_stage(study.id, "coarse", 2, {"epochs": 3})
    for s in (store, other, store):
        s.add_stage_compute(study.id, "coarse", 3.0, 1.5)
    record = other.stage(study.id, "coarse")
    assert record is not None
    assert (record.trial_epochs, record.seconds) == (9.0, 4.5)
    assert record.result == {"epochs": 3}
    store.close()
    other.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("nonsense", "Could not parse"),
        ("postgresql://postgres@127.0.0.1:1/test", "127.0.0.1"),
    ],
)
def test_unusable_storage_is_a_clear_error(url: str, problem: str) -> None:
    with pytest.raises(StorageError) as info:
        Store(url)
    assert url in str(info.value)
    assert problem in str(info.value)
