"""The search stages: the coarse round and the refine rounds (docs/RECIPE.md, stages 3 and 4).

Each round is one Optuna study, ``<study>:<stage>``, whose trials are plain Optuna trials. A
round's row holds its :class:`~hpsearch.results.SearchRound`: the ranges, epochs and trials it
was set up with, and, once its trials are all back, their counts, the best one and the gain.
Trials whose run was cut short (a worker died, a process stopped) are failed and their
parameters queued again, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.recipe import (
    extend_edges,
    narrow,
    round_trials,
    stage_epochs,
    top_count,
    trial_spec,
)
from hpsearch.results import (
    SearchRound,
    TrialCounts,
    TrialSummary,
    WorkItem,
    stored_result,
)
from hpsearch.scheduling._first_trials import (
    continuable,
    continue_best,
    continued_later,
    range_test_of,
    seed_first_trial,
)
from hpsearch.scheduling._stage_trials import (
    CONTINUES,
    RESUME,
    LrPrior,
    StageTrials,
    distributions,
)
from hpsearch.scheduling._trial_ends import TrialEnds
from hpsearch.spec import SearchRange, StudySpec, param_name, param_path, spec_with
from hpsearch.storage import StageRecord, Store, StudyRecord, optuna_trial_id

WAIT: Literal["wait"] = "wait"  # nothing to hand out until running work finishes
QUEUE_BATCH = 256  # random trials queued by one claim at most
Records = Mapping[str, StageRecord]  # the study's stage rows by name, as read for this decision


def is_search_stage(stage: str) -> bool:
    return stage == "coarse" or stage.startswith("refine-")


def search_round(record: StageRecord) -> SearchRound | None:
    """A search stage's round as stored (None: skipped, or unreadable)."""
    round_ = stored_result(SearchRound, record.result)
    return round_ if isinstance(round_, SearchRound) else None


class SearchRounds:
    """Sets up, hands out the trials of, and sums up the search rounds of a store's studies."""

    def __init__(self, store: Store, max_retries: int) -> None:
        self.store = store
        self.optuna = StageTrials(store)
        self.ends = TrialEnds(store, self.optuna, max_retries)

    # --- the next trial of a round -----------------------------------------------------------

    def step(
        self, study: StudyRecord, stage: str, position: int, records: dict[str, StageRecord]
    ) -> WorkItem | Literal["wait"] | None:
        """The round's next trial, WAIT, or None once the round is over (its row in ``records``
        then holds its summary, for the rounds after it to read)."""
        record = records.get(stage)
        if record is None:
            record = self._start(study, stage, position, records)
            if record.status == "skipped":
                records[stage] = record
                return None
        round_ = search_round(record)
        assert round_ is not None, f"{study.name}/{stage}: a running round without its setup"
        ostudy = self.stage_study(study, stage, round_.epochs)
        counts = self.optuna.counts(ostudy)
        done = counts["complete"] + counts["pruned"] + counts["failed"]
        over_budget = _over_budget(study.spec, records, round_.epochs)
        if done + counts["running"] < round_.trials and not over_budget:
            prior = self._lr_prior(study, stage, records)
            trial = self._start_trial(study, stage, ostudy, round_, counts, prior)
            # None: a claim on the fast path took the queued trial meanwhile, so these counts
            # are stale; decide nothing from them (above all, not that the round is over)
            return WAIT if trial is None else self.trial_item(study, stage, round_, trial)
        if counts["running"]:
            return WAIT
        if counts["waiting"]:  # queued, but the budget ran out before they could start
            self.optuna.cancel_waiting(ostudy, "the study's budget is spent")
        ended = self._summarize(study, stage, round_, ostudy, over_budget)
        self.store.update_stage(
            study.id, stage, status="completed", result=ended.model_dump(mode="json")
        )
        records[stage] = self._record(study.id, stage)
        return None

    def _start(
        self, study: StudyRecord, stage: str, position: int, records: Records
    ) -> StageRecord:
        """The round's row: skipped (with the reason), or started with its setup and its first,
        seeded, trial queued."""
        skip = self._skip_reason(study, stage, records)
        if skip is None and _over_budget(study.spec, records, stage_epochs(study.spec, stage)):
            skip = "the study's budget is spent"
        if skip is not None:
            self.store.start_stage(study.id, stage, position, {"reason": skip})
            self.store.update_stage(study.id, stage, status="skipped")
            return self._record(study.id, stage)
        round_, continued = self._setup(study, stage, records)
        record = self.store.start_stage(study.id, stage, position, round_.model_dump(mode="json"))
        if stage != "coarse":
            dists = distributions(round_.ranges)
            continue_best(self, study, stage, previous_round(stage), dists, continued)
        seed_first_trial(self, study, stage, round_, records, continued)
        return record

    def _start_trial(
        self,
        study: StudyRecord,
        stage: str,
        ostudy: optuna.Study,
        round_: SearchRound,
        counts: Mapping[str, int],
        prior: LrPrior | None = None,
    ) -> FrozenTrial | None:
        """Start the next trial: a queued one, or (the random sampler) up to ``QUEUE_BATCH`` of
        the trials the round still needs, queued at once, or one sampled now (TPE, Sobol: they
        learn from, or keep their place in, the trials before). None if another claim just
        took the last queued one.

        Queueing many at once lets most claims of the round take the fast path (queueing one at
        a time sent every claim to this locked path); queueing at most ``QUEUE_BATCH`` keeps
        each claim's work bounded whatever ``trials`` says (10,000 in one insert took seconds).
        """
        ranges = round_.ranges
        search = study.spec.recipe.coarse if stage == "coarse" else study.spec.recipe.refine
        if not counts["waiting"]:
            if search.sampler != "random":
                return self.optuna.ask(ostudy, stage, ranges)
            done = counts["complete"] + counts["pruned"] + counts["failed"]
            needed = min(round_.trials - done - counts["running"], QUEUE_BATCH)
            self.optuna.enqueue_random(ostudy, study.spec, stage, ranges, needed, prior)
        return self.optuna.pop(ostudy)

    def quick(self, study: StudyRecord, current: StageRecord) -> WorkItem | Literal["wait"] | None:
        """A claim's fast path in a running round (no lock): a queued trial, started now; WAIT
        when every trial of the round is out; None: ask the careful path."""
        round_ = search_round(current)
        if round_ is None:
            return None
        ostudy = self.stage_study(study, current.name, round_.epochs)
        trial = self.optuna.pop(ostudy)
        if trial is not None:
            return self.trial_item(study, current.name, round_, trial)
        counts = self.optuna.counts(ostudy)
        done = counts["complete"] + counts["pruned"] + counts["failed"]
        if counts["running"] and done + counts["running"] >= round_.trials:
            return WAIT  # the round's last trials are out; it ends when they come back
        return None

    def trial_item(
        self, study: StudyRecord, stage: str, round_: SearchRound, trial: FrozenTrial
    ) -> WorkItem:
        params = dict(trial.params)
        item_spec = trial_spec(study.spec, spec_params(params), round_.epochs, stage)
        continues = trial.user_attrs.get(CONTINUES)
        if continues:  # the rest of a longer run: no warmup again (a decaying schedule goes on
            # from where the round's schedule stands at the parent's last epoch)
            item_spec = spec_with(item_spec, {"train.warmup_epochs": 0})
        return WorkItem(
            study_id=study.id,
            study=study.name,
            stage=stage,
            kind="trial",
            spec=item_spec,
            params=params,
            trial_id=optuna_trial_id(trial),
            trial_number=trial.number,
            resume_epoch=resume["epoch"] if (resume := trial.user_attrs.get(RESUME)) else None,
            keep_final=continued_later(study.spec, stage),
            continues=continues["number"] if continues else None,
        )

    # --- setting a round up ------------------------------------------------------------------

    def _setup(
        self, study: StudyRecord, stage: str, records: Records
    ) -> tuple[SearchRound, list[FrozenTrial]]:
        """The round's setup, and (refine) the trials of the round before it continues."""
        spec = study.spec
        if stage == "coarse":
            ranges = self._coarse_ranges(study, records)
            setup = SearchRound(
                ranges=ranges,
                epochs=stage_epochs(spec, stage),
                trials=round_trials(spec, stage, _spent(records)),
            )
            return setup, []
        previous_stage = previous_round(stage)
        previous = search_round(records[previous_stage])
        assert previous is not None, f"{study.name}/{stage}: the round before has no ranges"
        ref = spec.recipe.refine
        top = _top(self.trials(study, previous_stage), ref.top_fraction, ref.top_min)
        best = self.ranked_trials(study)[:1]
        ranges = narrow([t.params for t in top + best], previous.ranges, ref.margin)
        if best and ref.extend_edges:  # the best on an edge of the range: look past it
            ranges = extend_edges(spec, ranges, previous.ranges, best[0].params, ref.margin)
        epochs = stage_epochs(spec, stage)
        continued = continuable(self, study, previous_stage, epochs, ranges)[: ref.continue_top]
        setup = SearchRound(
            ranges=ranges,
            previous_ranges=previous.ranges,
            narrowed_from=[t.number for t in top],
            best_so_far=trial_summary(best[0]) if best else None,
            epochs=epochs,
            trials=round_trials(spec, stage, _spent(records)),
            continued=[t.number for t in continued],
        )
        return setup, continued

    def _coarse_ranges(self, study: StudyRecord, records: Records) -> dict[str, SearchRange]:
        """The spec's dimensions by Optuna name, the learning rate's set by the range test (or,
        with ``recipe.range_test.outside_share``, the whole of ``search.lr``: the range test's
        range is then the prior most of its trials draw from, ``_lr_prior``)."""
        ranges = {param_name(p): r for p, r in study.spec.search.dimensions().items()}
        range_test = range_test_of(records)
        if range_test is not None and not study.spec.recipe.range_test.outside_share:
            ranges["lr"] = SearchRange(low=range_test.range.low, high=range_test.range.high)
        return ranges

    def _lr_prior(self, study: StudyRecord, stage: str, records: Records) -> LrPrior | None:
        """The coarse stage's LR prior: the range test's range, and the share of trials drawn
        outside it (None: no prior; every trial draws from the round's ranges)."""
        share = study.spec.recipe.range_test.outside_share
        range_test = range_test_of(records)
        if stage != "coarse" or not share or range_test is None:
            return None
        found = SearchRange(low=range_test.range.low, high=range_test.range.high)
        return LrPrior("lr", found, share)

    def _skip_reason(self, study: StudyRecord, stage: str, records: Records) -> str | None:
        if stage in ("coarse", "refine-1"):
            return None
        previous = records.get(previous_round(stage))
        round_ = search_round(previous) if previous is not None else None
        if previous is None or previous.status == "skipped" or round_ is None:
            return "the previous round was skipped"
        gain = round_.gain or 0.0
        min_gain = study.spec.recipe.refine.min_gain
        if gain <= min_gain:
            return f"the previous round gained {gain:.4f} <= min_gain {min_gain}"
        return None

    def _summarize(
        self,
        study: StudyRecord,
        stage: str,
        round_: SearchRound,
        ostudy: optuna.Study,
        over_budget: bool,
    ) -> SearchRound:
        """The round with its end: trials by state, the best, and (refine) what it gained."""
        trials = ostudy.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value or 0.0, default=None)
        gain = None
        if stage.startswith("refine-"):
            overall = self.ranked_trials(study)
            this_round = {optuna_trial_id(t) for t in complete}
            before = [t.value or 0.0 for t in overall if optuna_trial_id(t) not in this_round]
            best_now = overall[0].value or 0.0 if overall else 0.0
            gain = best_now - max(before, default=0.0)
        return round_.model_copy(
            update={
                "counts": TrialCounts(**count_states(trials)),
                "best": trial_summary(best) if best else None,
                "budget_exhausted": over_budget,
                "gain": gain,
            }
        )

    # --- reading -----------------------------------------------------------------------------

    def stage_study(self, study: StudyRecord, stage: str, epochs: int) -> optuna.Study:
        """The Optuna study of one round (created on first use)."""
        return self.optuna.study(study.id, study.name, study.spec, stage, epochs)

    def trials(self, study: StudyRecord, stage: str) -> list[FrozenTrial]:
        """The Optuna trials of one round (empty before the round has started)."""
        record = self.store.stage(study.id, stage)
        round_ = search_round(record) if record is not None else None
        if round_ is None:
            return []
        return self.stage_study(study, stage, round_.epochs).get_trials(deepcopy=False)

    def ranked_trials(self, study: StudyRecord) -> list[FrozenTrial]:
        """Completed trials of every round, best first; the longer-trained wins ties."""
        trials = []
        for record in self.store.stages(study.id):
            round_ = search_round(record) if is_search_stage(record.name) else None
            if round_ is not None:
                ostudy = self.stage_study(study, record.name, round_.epochs)
                trials += ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return sorted(trials, key=lambda t: (t.value or 0.0, t.number), reverse=True)

    def running_rounds(self, study: StudyRecord) -> list[tuple[StageRecord, SearchRound]]:
        """The study's rounds in progress, with their setups."""
        found = []
        for record in self.store.stages(study.id):
            if record.status == "running" and is_search_stage(record.name):
                round_ = search_round(record)
                if round_ is not None:
                    found.append((record, round_))
        return found

    def _record(self, study_id: int, stage: str) -> StageRecord:
        record = self.store.stage(study_id, stage)
        assert record is not None, stage
        return record


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state; a failed trial whose parameters were retried counts as ``retried``."""
    counts = TrialCounts().model_dump()
    for t in trials:
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["retried" if t.user_attrs.get("retried") else "failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
        else:
            counts["waiting"] += 1
    return counts


def trial_summary(trial: FrozenTrial) -> TrialSummary:
    return TrialSummary(number=trial.number, value=trial.value, params=dict(trial.params))


def spec_params(params: Mapping[str, float]) -> dict[str, float]:
    """Optuna's parameters by the spec fields they set (``lr`` -> ``train.lr``)."""
    return {param_path(k): v for k, v in params.items()}


def previous_round(stage: str) -> str:
    round_number = int(stage.split("-")[1])
    return "coarse" if round_number == 1 else f"refine-{round_number - 1}"


def _over_budget(spec: StudySpec, records: Records, next_epochs: float) -> bool:
    """Would another trial of ``next_epochs`` overrun the study's budget?"""
    budget = spec.budget
    epochs = sum(r.trial_epochs for r in records.values())
    seconds = sum(r.seconds for r in records.values())
    if budget.trial_epochs is not None and epochs + next_epochs > budget.trial_epochs:
        return True
    return budget.seconds is not None and seconds >= budget.seconds


def _spent(records: Records) -> float:
    return sum(r.trial_epochs for r in records.values())


def _top(trials: list[FrozenTrial], fraction: float, minimum: int) -> list[FrozenTrial]:
    """The top trials by value: completed ones, or pruned ones when too few completed."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pool = (
        complete
        if len(complete) >= minimum
        else complete + [t for t in trials if t.state == TrialState.PRUNED and t.value is not None]
    )
    ranked = sorted(pool, key=lambda t: t.value or 0.0, reverse=True)
    return ranked[: top_count(len(ranked), fraction, minimum)]
