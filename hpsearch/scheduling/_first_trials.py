"""The first trials of a search round: the configuration a careful person would try first, and
(refine) the best trials of the round before, continued (seed 001, step 5: "pick best models,
train them for longer"; ``recipe.refine.continue_top``).

A trial of a round that a later round may continue keeps its last weights as a checkpoint when
it completes (``WorkItem.keep_final``). When the next round starts, its first trials are the best
of those, each queued with the checkpoint it goes on from (``resume``) and its lineage
(``continues``): it trains at a constant LR from where its parent stopped to the round's epochs,
reporting its parent's epochs first, as a retried trial does. The other trials' weights are
deleted then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from hpsearch.recipe import field_value, stage_epochs
from hpsearch.results import RangeTestResult, SearchRound, stored_result
from hpsearch.scheduling._stage_trials import CHECKPOINT, CONTINUES, RESUME, distributions
from hpsearch.spec import SearchRange, StudySpec, param_name
from hpsearch.storage import Queued, StageRecord, StudyRecord, optuna_trial_id

if TYPE_CHECKING:
    from hpsearch.scheduling._rounds import SearchRounds

Records = Mapping[str, StageRecord]  # the study's stage rows by name


def continued_later(spec: StudySpec, stage: str) -> bool:
    """Whether the next refine round may continue trials of ``stage``: it exists and trains
    longer (every refine round trains as long as the first, so only the coarse round's trials
    are continued)."""
    index = 0 if stage == "coarse" else int(stage.split("-")[1])
    ref = spec.recipe.refine
    if ref.continue_top == 0 or index >= ref.rounds:
        return False
    return stage_epochs(spec, f"refine-{index + 1}") > stage_epochs(spec, stage)


def continuable(
    rounds: SearchRounds,
    study: StudyRecord,
    stage: str,
    epochs: int,
    ranges: Mapping[str, SearchRange],
) -> list[FrozenTrial]:
    """The completed trials of round ``stage`` that kept their last weights, trained fewer
    than ``epochs`` and lie in the next round's ``ranges``, best first."""
    artifacts = rounds.store.artifacts
    kept = [
        t
        for t in rounds.trials(study, stage)
        if t.state == TrialState.COMPLETE
        and (saved := t.user_attrs.get(CHECKPOINT))
        and saved["epoch"] < epochs
        and all(name in t.params and r.contains(t.params[name]) for name, r in ranges.items())
        and artifacts.checkpoint(study.id, optuna_trial_id(t)).is_file()
    ]
    return sorted(kept, key=lambda t: t.value or 0.0, reverse=True)


def continue_best(
    rounds: SearchRounds,
    study: StudyRecord,
    stage: str,
    previous: str,
    dists: dict[str, BaseDistribution],
    continued: list[FrozenTrial],
) -> None:
    """Queue the trials of round ``stage`` (its parameters' ``dists``) that continue the best
    of round ``previous`` ("pick the best models, train them for longer"), first of the round;
    the other trials of that round keep no weights from now on."""
    kept = {optuna_trial_id(t) for t in continued}
    dropped = [
        optuna_trial_id(t) for t in rounds.trials(study, previous) if optuna_trial_id(t) not in kept
    ]
    rounds.store.artifacts.remove_checkpoints(study.id, dropped)
    if not continued:
        return
    entries = []
    for parent in continued:
        saved = parent.user_attrs[CHECKPOINT]
        attrs = {
            "stage": stage,
            CONTINUES: {"stage": previous, "number": parent.number},
            RESUME: {"trial_id": optuna_trial_id(parent), **saved},
        }
        entries.append(Queued({k: parent.params[k] for k in dists}, dists, attrs))
    epochs = stage_epochs(study.spec, stage)
    rounds.optuna.enqueue(rounds.stage_study(study, stage, epochs), entries)


def seed_first_trial(
    rounds: SearchRounds,
    study: StudyRecord,
    stage: str,
    round_: SearchRound,
    records: Records,
    continued: list[FrozenTrial],
) -> None:
    """Queue the configuration a careful person would try first, before the random ones.

    Coarse: the range test's suggested LR with the spec's weight decay. Refine: the best
    configuration so far, now trained longer ("refine, train longer"), unless a trial of
    ``continued`` goes on from its weights already. Both lie inside the round's ranges.
    Only the driver that started the round (under the claim lock) seeds it.
    """
    ranges = round_.ranges
    if stage == "coarse":
        range_test = range_test_of(records)
        if range_test is None:
            return
        spec = study.spec  # the range test's LR; every other dimension at the spec's value
        dims = spec.search.dimensions()
        first = {param_name(p): float(field_value(spec, p)) for p in dims}  # type: ignore[arg-type]
        first["lr"] = range_test.suggested_lr
    else:
        best = round_.best_so_far
        if best is None or any(t.params == best.params for t in continued):
            return  # the best so far goes on from its weights already
        first = dict(best.params)
    if not all(name in first and ranges[name].contains(first[name]) for name in ranges):
        return
    first = {name: first[name] for name in ranges}
    ostudy = rounds.stage_study(study, stage, round_.epochs)
    attrs = {"stage": stage, "seeded": True}
    rounds.optuna.enqueue(ostudy, [Queued(first, distributions(ranges), attrs)])


def range_test_of(records: Records) -> RangeTestResult | None:
    record = records.get("range_test")
    if record is None:
        return None
    result = stored_result(RangeTestResult, record.result)
    return result if isinstance(result, RangeTestResult) else None
