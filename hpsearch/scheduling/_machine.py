"""The recipe as a stage machine over stored state.

Given what the store holds for a study, :meth:`StageMachine.next_item` answers "what is the next
work item" and :meth:`StageMachine.finish` records "what follows from this finished one". The
machine keeps nothing between calls that the store does not also hold (it caches only what never
changes: parsed specs, open Optuna studies), so the local runner and the API server drive the very
same machine, and a killed driver resumes where the store says.

Stages, in order: ``sanity``, ``range_test``, ``coarse``, ``refine-1`` .. ``refine-R``, ``final``
(and ``targeted``, written by the final item when the diagnosis called for it). The single stages
are one work item each, done here; the search rounds are ``SearchRounds``'. Every stage's result
has one typed shape (``hpsearch.results``), stored as its row's JSON.

One driver at a time decides for a study: ``next_item`` must be called under the study's claim
lock (the local runner is a single driver; the server's scheduler takes a lock per study).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

import optuna
from optuna.trial import FrozenTrial

from hpsearch.recipe import check_outcome, objective_key, objective_value, spec_config
from hpsearch.results import (
    FinalItemResult,
    Kind,
    Outcome,
    SanityResult,
    StageNote,
    WorkItem,
    stored_result,
)
from hpsearch.scheduling._final_models import keep_final_models, remove_study_models
from hpsearch.scheduling._rounds import (
    WAIT,
    SearchRounds,
    is_search_stage,
    search_round,
    spec_params,
)
from hpsearch.scheduling._stage_trials import StageTrials, optuna_name
from hpsearch.spec import MAX_ROUNDS, StudySpec
from hpsearch.storage import StageRecord, Store, StudyRecord

DONE: Literal["done"] = "done"  # the study is over (completed, failed or stopped)
SINGLE = ("sanity", "range_test", "final")
MAX_RETRIES = 2

__all__ = ["DONE", "MAX_RETRIES", "SINGLE", "WAIT", "StageMachine", "is_search_stage", "plan"]


def plan(spec: StudySpec) -> list[str]:
    """The study's stages in order."""
    # bounded even for a stored spec from before the bound (read leniently: Store.stages)
    rounds = [f"refine-{r}" for r in range(1, min(spec.recipe.refine.rounds, MAX_ROUNDS) + 1)]
    return ["sanity", "range_test", "coarse", *rounds, "final"]


class StageMachine:
    """Hands out work items for studies in ``store`` and records what comes back."""

    def __init__(self, store: Store, max_retries: int = MAX_RETRIES) -> None:
        self.store = store
        self.max_retries = max_retries  # re-enqueues of an interrupted trial's parameters
        self.rounds = SearchRounds(store, max_retries)
        self.optuna: StageTrials = self.rounds.optuna

    # --- what next -------------------------------------------------------------------------

    def next_item(self, study_id: int) -> WorkItem | Literal["wait", "done"]:
        """The study's next work item, WAIT (for running work to finish) or DONE."""
        study = self.store.get_study(study_id)
        if study.state != "running":
            return DONE
        records = {r.name: r for r in self.store.stages(study_id)}
        for position, name in enumerate(plan(study.spec)):
            record = records.get(name)
            if record is not None and record.finished:
                if record.status == "failed" and self._failure_stops(study, record):
                    return DONE
                continue
            if name in SINGLE:
                if not self.store.claim_stage(study_id, name, position):
                    return WAIT  # claimed by another driver, still running
                return self._single_item(study, name, records)
            step = self.rounds.step(study, name, position, records)
            if step is not None:
                return step
        self.store.set_study_state(study_id, "completed")
        self.store.artifacts.remove_checkpoints(study_id)  # nothing of it will go on
        return DONE

    def quick_item(self, study: StudyRecord) -> WorkItem | Literal["wait"] | None:
        """The fast path of a claim, safe without the claim lock: a queued trial of the current
        search stage (started now), WAIT when plainly nothing can be handed out (a single stage
        is being worked on; every trial of the stage is out), or None: ask ``next_item``.

        Most claims end here, so workers are not served one at a time, and idle workers polling
        a busy study cost a few reads. Studies with a budget always take the careful path,
        which checks the budget before every trial. ``study`` is as read by the claim, a moment
        ago (anything it decides from that is checked again under the lock, or by the pop).
        """
        budget = study.spec.budget
        if study.state != "running" or budget.trial_epochs is not None or budget.seconds:
            return None
        current = next((r for r in self.store.stages(study.id) if not r.finished), None)
        if current is None or current.status != "running":
            return None  # between stages: next_item decides what comes next
        if not is_search_stage(current.name):
            return WAIT  # one worker is doing the sanity checks, range test or final training
        return self.rounds.quick(study, current)

    def _failure_stops(self, study: StudyRecord, record: StageRecord) -> bool:
        """A failed sanity check (unless told to continue) or final training ends the study."""
        stage = record.name
        if stage == "sanity" and study.spec.recipe.sanity.continue_on_failure:
            return False
        if stage not in ("sanity", "final"):
            return False
        result = stored_result(SanityResult, record.result) if stage == "sanity" else None
        if isinstance(result, SanityResult):
            message = f"sanity checks failed: {result.verdict}: {result.advice}"
        elif stage == "sanity":  # the checks could not run at all
            message = f"sanity checks failed: {_reason(record)}"
        else:
            message = f"final training failed: {_reason(record)}"
        self.store.set_study_state(study.id, "failed", message)
        return True

    def _single_item(
        self, study: StudyRecord, stage: str, records: dict[str, StageRecord]
    ) -> WorkItem:
        spec = study.spec
        if stage != "final":
            kind: Kind = "sanity" if stage == "sanity" else "range_test"
            return WorkItem(study_id=study.id, study=study.name, stage=stage, kind=kind, spec=spec)
        configs = [spec_params(t.params) for t in self.ranked_trials(study)]
        configs = configs[: spec.recipe.final.ensemble_top_k] or [spec_config(spec)]
        left = None
        if spec.budget.trial_epochs is not None:
            spent = sum(r.trial_epochs for r in records.values())
            left = max(0.0, spec.budget.trial_epochs - spent)
        saved = self.store.artifacts.saved_checkpoint(study.id, "final")  # a retry's
        return WorkItem(
            study_id=study.id,
            study=study.name,
            stage="final",
            kind="final",
            spec=spec,
            configs=configs,
            epoch_budget=left,
            resume_epoch=saved["epoch"] if saved else None,
        )

    # --- reports and results -----------------------------------------------------------------

    def report(
        self,
        item: WorkItem,
        epoch: int,
        metrics: dict[str, float],
        study_state: str | None = None,
        progress: list[dict[str, float]] | None = None,
    ) -> bool:
        """Record a trial's epoch; True means "stop now" (pruned, or the study stopped).

        The pruner judges the spec's objective (``val_`` + ``search.objective``); a trial's
        ``metrics`` that lack it raise :class:`OutcomeError` and record nothing in Optuna.
        A caller that has just read the study's state, or every epoch the trial reported so far
        (``progress``: metrics with their epoch, this one included), passes them and saves a
        query each; otherwise they are read."""
        state = study_state if study_state is not None else self.store.study_state(item.study_id)
        running = state == "running"
        if item.kind != "trial":
            return not running
        assert item.trial_id is not None
        assert item.trial_number is not None
        value = objective_value(item, epoch, metrics)
        ostudy = self.rounds.ends.item_study(item)
        curve = None
        if progress is not None:
            key = objective_key(item)
            curve = {int(e["epoch"]): float(e[key]) for e in progress if key in e}
            curve[epoch] = value
        prune = self.optuna.report(ostudy, item.trial_id, item.trial_number, epoch, value, curve)
        return prune or not running

    def finish(self, item: WorkItem, outcome: Outcome) -> None:
        """Record a finished item; finishing one twice changes nothing the second time.

        An outcome that does not fit the item raises :class:`OutcomeError` and records nothing.
        """
        check_outcome(item, outcome)
        if item.kind == "trial":
            self.rounds.ends.finish_trial(item, outcome)
            return
        record = self.store.stage(item.study_id, item.stage)
        if record is None or record.finished:
            return
        if outcome.state == "failed" and outcome.retryable:  # its checkpoint is kept for it
            self.store.update_stage(item.study_id, item.stage, status="pending")
            return
        self.store.artifacts.remove_checkpoints(item.study_id, [item.stage])
        if isinstance(outcome.result, FinalItemResult) and outcome.state == "completed":
            self._finish_final(item, outcome.result)
            return
        result = outcome.result or StageNote(reason=outcome.reason or "failed")
        self.store.update_stage(
            item.study_id,
            item.stage,
            status=outcome.state,
            result=result.model_dump(mode="json"),
            trial_epochs=outcome.trial_epochs,
            seconds=outcome.seconds,
        )

    def keep_checkpoint(self, item: WorkItem, epoch: int, sha256: str) -> None:
        """Make the received file of ``sha256`` the latest checkpoint of a trial or of the final
        training, taken after ``epoch``; a run that ended meanwhile keeps none."""
        if item.kind == "trial":
            self.rounds.ends.keep_checkpoint(item, epoch, sha256)
            return
        artifacts = self.store.artifacts
        artifacts.keep_checkpoint(sha256, item.study_id, item.stage, epoch)
        record = self.store.stage(item.study_id, item.stage)
        if record is None or record.finished:
            artifacts.remove_checkpoints(item.study_id, [item.stage])

    def checkpoint_to_resume(self, item: WorkItem) -> tuple[Path, str] | None:
        """The checkpoint a retried trial or final training goes on from, and its sha256."""
        if item.kind == "trial":
            return self.rounds.ends.checkpoint_to_resume(item)
        saved = self.store.artifacts.saved_checkpoint(item.study_id, item.stage)
        if item.resume_epoch is None or saved is None:
            return None
        return self.store.artifacts.checkpoint(item.study_id, item.stage), str(saved["sha256"])

    def _finish_final(self, item: WorkItem, result: FinalItemResult) -> None:
        targeted = result.targeted
        final = keep_final_models(self.store, self.store.get_study(item.study_id), result.final)
        if targeted is not None:
            position = len(plan(self.store.get_study(item.study_id).spec))
            stored = targeted.model_dump(mode="json")
            self.store.start_stage(item.study_id, "targeted", position, stored)
            self.store.update_stage(
                item.study_id,
                "targeted",
                status="completed" if targeted.ran else "skipped",
                result=stored,
                trial_epochs=targeted.trial_epochs,
                seconds=targeted.seconds,
            )
        self.store.update_stage(
            item.study_id,
            "final",
            status="completed",
            result=final.model_dump(mode="json"),
            trial_epochs=final.trial_epochs,
            seconds=final.seconds,
        )
        self.store.artifacts.discard(Outcome(state="completed", result=result).files())

    # --- work cut short, studies that end --------------------------------------------------------

    def fail_orphans(self, study_id: int, held: set[int], older_than: float, reason: str) -> int:
        """Fail (and retry) the study's server-made RUNNING trials that no lease in ``held``
        holds and that started over ``older_than`` seconds ago: a claim cut off between making
        the trial and recording its lease. Returns how many."""
        study = self.store.get_study(study_id)
        failed = 0
        for record, round_ in self.rounds.running_rounds(study):
            ostudy = self.stage_study(study, record.name, round_.epochs)
            for trial_id in self.optuna.running_trial_ids(ostudy, older_than):
                if trial_id not in held:
                    frozen = self.store.optuna.get_trial(trial_id)
                    item = self.rounds.trial_item(study, record.name, round_, frozen)
                    failed += self.rounds.ends.fail_trial(item, reason, retryable=True, attrs={})
        return failed

    def abandon(self, study_id: int, reason: str, held: set[int]) -> None:
        """End a study that cannot go on: failed with ``reason``, its stages in progress failed,
        its queued trials and the running ones no worker holds (not in ``held``) failed and not
        retried. Held trials end when their workers next report (they are told to stop)."""
        if not self.store.set_study_state(study_id, "failed", reason, only_from="running"):
            return  # it ended meanwhile (stopped, failed, deleted): nothing of it runs
        study = self.store.get_study(study_id)
        for record in self.store.stages(study_id):
            if record.status not in ("running", "pending"):
                continue
            round_ = search_round(record) if is_search_stage(record.name) else None
            if round_ is not None:
                ostudy = self.stage_study(study, record.name, round_.epochs)
                self.optuna.end_unheld(ostudy, held, f"the study failed: {reason}")
            self.store.update_stage(study_id, record.name, status="failed")
        self.store.artifacts.remove_checkpoints(study_id)  # a held trial's go when it ends

    def give_up_stage(self, study_id: int, stage: str, reason: str) -> None:
        """A single stage that cannot be done (its retries are spent): it fails, and so does
        the study, with ``reason``."""
        note = StageNote(reason=reason).model_dump(mode="json")
        self.store.update_stage(study_id, stage, status="failed", result=note)
        self.abandon(study_id, reason, set())

    def delete(self, study_id: int) -> None:
        """Delete a study: its Optuna studies, its stage rows, and itself."""
        study = self.store.get_study(study_id)
        remove_study_models(self.store, study)
        self.store.artifacts.remove_checkpoints(study_id)
        for record in self.store.stages(study_id):
            # KeyError: a single stage, or a search stage that never asked for a trial
            with contextlib.suppress(KeyError):
                optuna.delete_study(
                    study_name=optuna_name(study.name, record.name), storage=self.store.optuna
                )
        self.optuna.forget(study_id)
        self.store.delete_study(study_id)

    # --- reading -----------------------------------------------------------------------------

    def stage_study(self, study: StudyRecord, stage: str, epochs: int) -> optuna.Study:
        """The Optuna study of one search stage (created on first use)."""
        return self.rounds.stage_study(study, stage, epochs)

    def trials(self, study: StudyRecord, stage: str) -> list[FrozenTrial]:
        """The Optuna trials of one search stage (empty before the stage has started)."""
        return self.rounds.trials(study, stage)

    def ranked_trials(self, study: StudyRecord) -> list[FrozenTrial]:
        """Completed search trials of every round, best first; the longer-trained wins ties."""
        return self.rounds.ranked_trials(study)


def _reason(record: StageRecord) -> str:
    note = stored_result(StageNote, record.result)
    return note.reason if isinstance(note, StageNote) else "unknown"
