"""Search trials shaped by their budget: a stage's trials decay their LR within their own epochs
(recipe.coarse.schedule, recipe.refine.schedule), or keep it constant as the notes say; and the
range test's range as a prior of the coarse LRs (recipe.range_test.outside_share), not a wall."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.protocol import LeaseRead
from hpsearch.recipe import trial_spec
from hpsearch.results import Outcome
from hpsearch.scheduling import Scheduler, StageMachine
from hpsearch.spec import spec_with
from hpsearch.storage import Store
from hpsearch.training import learning_rate
from tests.conftest import make_spec, tiny_study
from tests.hpsearch.scheduling.serving import first_trial
from workers.simulate import LR_RANGE, SUGGESTED_LR, simulated_outcome

PARAMS = {"train.lr": 0.2, "train.weight_decay": 1e-4}


def test_a_search_trial_decays_its_lr_within_its_epochs_unless_told_to_keep_it() -> None:
    decaying = make_spec(train={"epochs": 30, "warmup_epochs": 1.5, "lr": 0.1, "batch_size": 64})
    spec = spec_with(
        decaying, {"recipe.coarse.schedule": "constant", "recipe.refine.schedule": "constant"}
    )
    constant = trial_spec(spec, PARAMS, 3, "coarse")
    assert constant.train.schedule == "constant"
    assert constant.train.epochs == 3
    assert learning_rate(constant.train, 3.0) == pytest.approx(0.2)  # as high at its end

    assert decaying.recipe.coarse.schedule == decaying.recipe.refine.schedule == "cosine"
    coarse = trial_spec(decaying, PARAMS, 3, "coarse")
    assert coarse.train.schedule == "cosine"
    # the spec's warmup compressed with the schedule: 1.5 of 30 epochs is 0.15 of 3
    assert coarse.train.warmup_epochs == pytest.approx(0.15)
    floor = 0.2 * coarse.train.min_lr_ratio
    assert learning_rate(coarse.train, 3.0) == pytest.approx(floor)  # decayed by its last step
    assert floor < learning_rate(coarse.train, 1.5) < 0.2
    # the refine stage has its own
    assert trial_spec(spec, PARAMS, 9, "refine-1").train.schedule == "constant"
    refining = spec_with(spec, {"recipe.refine.schedule": "linear"})
    assert trial_spec(refining, PARAMS, 9, "refine-2").train.schedule == "linear"


def test_a_claimed_trial_trains_with_its_stage_schedule(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shape.db'}"
    store = Store(url)
    spec = tiny_study("shaped", recipe={"coarse": {"schedule": "linear"}})
    store.create_study(spec, driver="server")
    lease = first_trial(Scheduler(StageMachine(store), 60.0))
    assert lease.item.stage == "coarse"
    assert lease.item.spec.train.schedule == "linear"
    assert lease.item.spec.train.epochs == spec.recipe.coarse.epochs
    store.close()


def coarse_lrs(tmp_path: Path, share: float) -> tuple[list[float], LeaseRead]:
    """The LRs of a served study's coarse trials (40 of them; the simulated range test gives
    ``LR_RANGE``), and the first coarse lease."""
    store = Store(f"sqlite:///{tmp_path / f'prior-{share}.db'}")
    recipe = {"coarse": {"trials": 40}, "range_test": {"outside_share": share}}
    store.create_study(tiny_study("prior", recipe=recipe), driver="server")
    scheduler = Scheduler(StageMachine(store), 60.0)
    first = first_trial(scheduler)
    lease: LeaseRead | None = first
    lrs = []
    while lease is not None and lease.item.stage == "coarse":
        lrs.append(lease.item.params["lr"])
        scheduler.finish(lease.id, "w1", Outcome(**simulated_outcome(lease.item.to_dict())))
        lease = scheduler.claim("w1")
    store.close()
    return lrs, first


def test_the_range_test_is_a_prior_most_coarse_lrs_are_drawn_from(tmp_path: Path) -> None:
    low, high = LR_RANGE
    walled, _ = coarse_lrs(tmp_path, 0.0)
    assert len(walled) == 40
    assert all(low <= lr <= high for lr in walled)  # a wall: every one inside

    drawn, first = coarse_lrs(tmp_path, 0.25)
    assert len(drawn) == 40
    assert first.item.params["lr"] == pytest.approx(SUGGESTED_LR)  # the suggestion first
    outside = [lr for lr in drawn if not low <= lr <= high]
    # a quarter drawn from the whole of search.lr (1e-4..1 here): most of those land outside
    assert 3 <= len(outside) <= 16
    assert len(drawn) - len(outside) >= 24
    spec_range = tiny_study().search.lr
    assert all(spec_range.low <= lr <= spec_range.high for lr in drawn)
    # the same seed, the same draws
    (tmp_path / "again").mkdir()
    again, _ = coarse_lrs(tmp_path / "again", 0.25)
    assert again == drawn
