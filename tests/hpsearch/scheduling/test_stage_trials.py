"""The fast paths over Optuna's tables give what Optuna's own API gives."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpsearch.local import run_search
from hpsearch.recipe._sampling import make_sampler
from hpsearch.scheduling._stage_trials import StageTrials, distributions
from hpsearch.spec import SearchRange
from hpsearch.storage import Store
from tests.conftest import tiny_study

RANGES = {
    "lr": SearchRange(low=1e-4, high=1.0),
    "weight_decay": SearchRange(low=1e-6, high=1e-2),
    "model.depth": SearchRange(low=1, high=3, log=False, integer=True),
}


def stage_study(store: Store, name: str = "t") -> tuple[StageTrials, optuna.Study]:
    trials = StageTrials(store)
    return trials, trials.study(1, name, tiny_study(name), "coarse", epochs=3)


def test_queued_trials_read_back_through_plain_optuna_as_optuna_writes_them(
    storage_url: str,
) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    spec = tiny_study("t", seed=3)
    trials.enqueue_random(ostudy, spec, "coarse", RANGES, count=5)
    # Optuna's own way of making the same kind of trial, for comparison
    reference = optuna.create_study(study_name="reference", storage=store.url)
    loaded = optuna.load_study(study_name="t:coarse", storage=store.url).trials
    for trial in loaded:
        reference.enqueue_trial(trial.params, user_attrs=trial.user_attrs)
    for ours, theirs in zip(loaded, reference.trials, strict=True):
        assert ours.state == theirs.state == TrialState.WAITING
        assert ours.user_attrs == theirs.user_attrs == {"stage": "coarse"}
        assert ours.distributions == distributions(RANGES)
    assert [t.number for t in loaded] == [0, 1, 2, 3, 4]
    assert isinstance(loaded[0].params["model.depth"], int)
    # Optuna itself starts a queued trial with exactly the stored parameters
    asked = ostudy.ask(fixed_distributions=distributions(RANGES))
    assert asked.params == loaded[0].params


def test_trials_queued_at_the_same_time_get_distinct_numbers(storage_url: str) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    spec = tiny_study("t")

    def queue() -> None:
        for _ in range(5):
            trials.enqueue_random(ostudy, spec, "coarse", RANGES, count=4)

    def ask() -> None:  # Optuna's own way of adding a trial (or starting a queued one), beside
        for _ in range(5):
            ostudy.ask(fixed_distributions=distributions(RANGES))

    threads = [threading.Thread(target=f) for f in (queue, queue, queue, ask)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = [t.number for t in optuna.load_study(study_name="t:coarse", storage=store.url).trials]
    assert len(numbers) >= 3 * 5 * 4
    assert sorted(numbers) == list(range(len(numbers)))  # each number once, none skipped


def test_random_trials_are_sampled_as_ask_would_sample_them(storage_url: str) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    spec = tiny_study("t", seed=5)
    trials.enqueue_random(ostudy, spec, "coarse", RANGES, count=4)
    queued = [t.params for t in ostudy.get_trials()]
    plain = optuna.create_study(
        study_name="plain", storage=store.url, sampler=make_sampler("random", 5, "coarse")
    )
    asked = [plain.ask(fixed_distributions=distributions(RANGES)).params for _ in range(4)]
    assert queued == asked  # the same numbers, the same seeds, the same draws


def test_concurrent_pops_start_every_queued_trial_exactly_once(storage_url: str) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    trials.enqueue_random(ostudy, tiny_study("t"), "coarse", RANGES, count=40)
    started: list[int] = []
    lock = threading.Lock()

    def pop_all() -> None:
        while (trial := trials.pop(ostudy)) is not None:
            with lock:
                started.append(trial.number)

    threads = [threading.Thread(target=pop_all) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(started) == list(range(40))
    states = {t.state for t in optuna.load_study(study_name="t:coarse", storage=store.url).trials}
    assert states == {TrialState.RUNNING}


def test_the_pruning_decision_is_the_median_pruners_own(storage_url: str) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    rng = random.Random(0)
    for _ in range(12):  # completed trials with assorted curves
        done = ostudy.ask(fixed_distributions=distributions(RANGES))
        for epoch in range(1, 4):
            done.report(rng.random(), epoch)
        ostudy.tell(done, rng.random())
    decisions = []
    for i in range(20):
        ours = ostudy.ask(fixed_distributions=distributions(RANGES))
        curve: dict[int, float] = {}
        for epoch in range(1, 4):
            value = curve[epoch] = rng.random()
            # half the trials give their curve so far (as the server does, from the lease)
            given = dict(curve) if i % 2 else None
            decided = trials.report(ostudy, ours._trial_id, ours.number, epoch, value, given)
            # the pruner itself, given the real study and the trial as Optuna reads it
            fresh = store.optuna.get_trial(ours._trial_id)
            assert fresh.intermediate_values == curve
            assert decided == ostudy.pruner.prune(ostudy, fresh)
            decisions.append(decided)
            if decided:
                break
        ostudy.tell(ours, state=TrialState.PRUNED)
    assert True in decisions
    assert False in decisions  # both answers were exercised


def test_finished_trials_read_back_as_optuna_tell_writes_them(storage_url: str) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    reference = optuna.create_study(study_name="reference", storage=store.url)
    history = {"history": [{"epoch": 1, "val_accuracy": 0.5}]}
    ends = [  # (state, value given, intermediate values reported)
        (TrialState.COMPLETE, 0.75, [0.5, 0.75]),
        (TrialState.PRUNED, None, [0.25, 0.125]),
        (TrialState.PRUNED, None, []),
        (TrialState.FAIL, None, [0.5]),
    ]
    for state, value, curve in ends:
        ours = ostudy.ask(fixed_distributions=distributions(RANGES))
        theirs = reference.ask(fixed_distributions=distributions(RANGES))
        for step, v in enumerate(curve, start=1):
            assert not trials.report(ostudy, ours._trial_id, ours.number, step, v)
            theirs.report(v, step)
        assert trials.finish(ours._trial_id, state, value, history)
        theirs.set_user_attr("history", history["history"])
        reference.tell(theirs, value, state=state)
        # a second finish, or a report after the end, changes nothing
        assert not trials.finish(ours._trial_id, TrialState.COMPLETE, 0.0, {"history": []})
        assert trials.report(ostudy, ours._trial_id, ours.number, len(curve) + 1, 0.0)
    loaded = optuna.load_study(study_name="t:coarse", storage=store.url).trials
    for ours_t, theirs_t in zip(loaded, reference.trials, strict=True):
        assert ours_t.state == theirs_t.state
        assert ours_t.value == theirs_t.value
        assert ours_t.intermediate_values == theirs_t.intermediate_values
        assert ours_t.user_attrs == theirs_t.user_attrs
        assert ours_t.datetime_complete is not None
    assert [t.value for t in loaded] == [0.75, 0.125, None, None]


def test_a_resent_report_replaces_the_epochs_value(storage_url: str) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    trial = ostudy.ask(fixed_distributions=distributions(RANGES))
    trials.report(ostudy, trial._trial_id, trial.number, 1, 0.5)
    trials.report(ostudy, trial._trial_id, trial.number, 1, float("nan"))
    trials.report(ostudy, trial._trial_id, trial.number, 2, 0.75)
    values = store.optuna.get_trial(trial._trial_id).intermediate_values
    assert values[2] == 0.75
    assert list(values) == [1, 2]
    assert values[1] != values[1]  # NaN, kept as Optuna keeps it


def test_a_queued_trial_cancelled_unstarted_ends_failed(storage_url: str) -> None:
    store = Store(storage_url)
    trials, ostudy = stage_study(store)
    trials.enqueue_random(ostudy, tiny_study("t"), "coarse", RANGES, count=2)
    trials.cancel_waiting(ostudy, "the study's budget is spent")
    loaded = optuna.load_study(study_name="t:coarse", storage=store.url).trials
    assert [t.state for t in loaded] == [TrialState.FAIL] * 2
    assert {t.user_attrs["fail_reason"] for t in loaded} == {"the study's budget is spent"}


def test_a_refine_round_continues_the_best_trials_of_the_round_before(tmp_path: Path) -> None:
    """Seed 001, step 5: "pick best models, train them for longer". Their first new epoch
    starts from the stored weights, and the round spends fewer trial-epochs."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spec = tiny_study("continued", recipe={"refine": {"continue_top": 2, "rounds": 1}})
    done = run_search(spec, url).json_data()
    assert done["state"] == "completed"
    refine = next(s for s in done["stages"] if s["name"] == "refine-1")
    assert len(refine["result"]["continued"]) == 2
    coarse = {
        t.number: t for t in optuna.load_study(study_name="continued:coarse", storage=url).trials
    }
    trials = optuna.load_study(study_name="continued:refine-1", storage=url).trials
    continued = [t for t in trials if "continues" in t.user_attrs]
    assert sorted(t.user_attrs["continues"]["number"] for t in continued) == sorted(
        refine["result"]["continued"]
    )
    fresh_first = [t.user_attrs["history"][0]["train_loss"] for t in trials if t not in continued]
    trained = 0.0
    for trial in continued:
        parent = coarse[trial.user_attrs["continues"]["number"]]
        history, before = trial.user_attrs["history"], parent.user_attrs["history"]
        assert [e["epoch"] for e in history] == [1, 2, 3, 4]  # one history, each epoch once
        assert history[:2] == before  # the parent's epochs, as it measured them
        # the first new epoch starts from the parent's weights: its loss goes on from where the
        # parent's ended, far below a fresh model's first epoch
        assert history[2]["train_loss"] < 1.5 * before[-1]["train_loss"]
        assert history[2]["train_loss"] < 0.5 * min(fresh_first)
        # the rest of the round's decaying schedule (recipe.refine.schedule: cosine), not its
        # start again: the parent's epochs are the round's first two
        assert history[2]["lr"] > history[3]["lr"]
        assert history[2]["lr"] < trial.params["lr"]
        trained += len(history) - 2
    fresh = sum(len(t.user_attrs["history"]) for t in trials if t not in continued)
    assert refine["trial_epochs"] == trained + fresh  # the continued trials' first 2 not again
    assert not list((Store(url).artifacts.root / "checkpoints").rglob("*.pt"))
