"""The recipe as a stage machine over stored state.

Given what the store holds for a study, :meth:`StageMachine.next_item` answers "what is the next
work item" and :meth:`StageMachine.finish` records "what follows from this finished one". The
machine keeps nothing between calls that the store does not also hold (it caches only what never
changes: parsed specs, open Optuna studies), so the local runner and the API server drive the very
same machine, and a killed driver resumes where the store says.

Stages, in order: ``sanity``, ``range_test``, ``coarse``, ``refine-1`` .. ``refine-R``, ``final``
(and ``targeted``, written by the final item when the diagnosis called for it). Coarse and refine
trials are Optuna trials in one Optuna study per stage, named ``<study>:<stage>``.

One driver at a time decides for a study: ``next_item`` must be called under the study's claim
lock (the local runner is a single driver; the server's scheduler takes a lock per study).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any, Literal, TypeGuard

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.recipe._derive import stage_epochs, trial_spec
from hpsearch.recipe._items import Outcome, WorkItem, check_outcome, param_path
from hpsearch.recipe._ranges import Range, narrow, top_count
from hpsearch.recipe._trials import StageTrials, distributions, optuna_name
from hpsearch.spec import MAX_ROUNDS, StudySpec, parse_spec
from hpsearch.storage import StageRecord, Store, StudyRecord

WAIT: Literal["wait"] = "wait"  # nothing to hand out until running work finishes
DONE: Literal["done"] = "done"  # the study is over (completed, failed or stopped)
SINGLE = ("sanity", "range_test", "final")
MAX_RETRIES = 2
QUEUE_BATCH = 256  # random trials queued by one claim at most
Records = Mapping[str, StageRecord]  # the study's stage rows by name, as read for this decision


def plan(spec: StudySpec) -> list[str]:
    """The study's stages in order."""
    # bounded even for a stored spec from before the bound (read leniently: Store.stages)
    rounds = [f"refine-{r}" for r in range(1, min(spec.recipe.refine.rounds, MAX_ROUNDS) + 1)]
    return ["sanity", "range_test", "coarse", *rounds, "final"]


def is_search_stage(stage: str) -> bool:
    return stage == "coarse" or stage.startswith("refine-")


class StageMachine:
    """Hands out work items for studies in ``store`` and records what comes back."""

    def __init__(self, store: Store, max_retries: int = MAX_RETRIES) -> None:
        self.store = store
        self.max_retries = max_retries  # re-enqueues of an interrupted trial's parameters
        self.optuna = StageTrials(store)

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
            step = self._trial_stage(study, name, position, records)
            if step is not None:
                return step
        self.store.set_study_state(study_id, "completed")
        return DONE

    def _failure_stops(self, study: StudyRecord, record: StageRecord) -> bool:
        """A failed sanity check (unless told to continue) or final training ends the study."""
        stage, result = record.name, record.result
        if stage == "sanity" and study.spec.recipe.sanity.continue_on_failure:
            return False
        if stage not in ("sanity", "final"):
            return False
        if stage == "sanity" and "verdict" in result:
            message = f"sanity checks failed: {result['verdict']}: {result.get('advice')}"
        elif stage == "sanity":  # the checks could not run at all
            message = f"sanity checks failed: {result.get('reason')}"
        else:
            message = f"final training failed: {result.get('reason')}"
        self.store.set_study_state(study.id, "failed", message)
        return True

    def _single_item(self, study: StudyRecord, stage: str, records: Records) -> WorkItem:
        spec = study.spec
        if stage != "final":
            return WorkItem(study.id, study.name, stage, stage, spec.model_dump(mode="json"))  # type: ignore[arg-type]
        configs = [_spec_params(t.params) for t in self.ranked_trials(study)]
        configs = configs[: spec.recipe.final.ensemble_top_k] or [
            {"train.lr": spec.train.lr, "train.weight_decay": spec.train.weight_decay}
        ]
        left = None
        if spec.budget.trial_epochs is not None:
            spent = sum(r.trial_epochs for r in records.values())
            left = max(0.0, spec.budget.trial_epochs - spent)
        return WorkItem(
            study.id,
            study.name,
            "final",
            "final",
            spec.model_dump(mode="json"),
            configs=configs,
            epoch_budget=left,
        )

    def _trial_stage(
        self,
        study: StudyRecord,
        stage: str,
        position: int,
        records: dict[str, StageRecord],
    ) -> WorkItem | Literal["wait"] | None:
        """The next trial of a search stage, WAIT, or None once the stage is finished (its row
        in ``records`` then holds the result, for the stages after it to read)."""
        record = records.get(stage)
        if record is None:
            skip = self._refine_skip_reason(study, stage, records)
            if skip is None and _over_budget(study.spec, records, stage_epochs(study.spec, stage)):
                skip = "the study's budget is spent"
            if skip is not None:
                self.store.start_stage(study.id, stage, position, {"reason": skip})
                self.store.update_stage(study.id, stage, status="skipped")
                records[stage] = self._stage_record(study.id, stage)
                return None
            record = self.store.start_stage(
                study.id, stage, position, self._stage_setup(study, stage, records)
            )
            self._seed_first_trial(study, stage, record.result, records)
        setup = record.result
        ostudy = self.stage_study(study, stage, setup["epochs"])
        counts = self.optuna.counts(ostudy)
        done = counts["complete"] + counts["pruned"] + counts["failed"]
        over_budget = _over_budget(study.spec, records, setup["epochs"])
        if done + counts["running"] < setup["trials"] and not over_budget:
            trial = self._start_trial(study, stage, ostudy, setup, counts)
            # None: a claim on the fast path took the queued trial meanwhile, so these counts
            # are stale; decide nothing from them (above all, not that the stage is over)
            return WAIT if trial is None else self._trial_item(study, stage, setup, trial)
        if counts["running"]:
            return WAIT
        if counts["waiting"]:  # queued, but the budget ran out before they could start
            self.optuna.cancel_waiting(ostudy, "the study's budget is spent")
        trials = ostudy.get_trials(deepcopy=False)
        summary = self._summarize(study, stage, trials, over_budget)
        self.store.update_stage(study.id, stage, status="completed", result=setup | summary)
        records[stage] = self._stage_record(study.id, stage)
        return None

    def _start_trial(
        self,
        study: StudyRecord,
        stage: str,
        ostudy: optuna.Study,
        setup: dict[str, Any],
        counts: Mapping[str, int],
    ) -> FrozenTrial | None:
        """Start the next trial: a queued one, or (the random sampler) every trial the stage still
        needs, queued at once, or one sampled now (TPE, Sobol: they learn from, or keep their place
        in, the trials before). None if another claim just took the last queued one.

        Queueing many at once lets most claims of the stage take the fast path (queueing one at
        a time sent every claim to this locked path); queueing at most ``QUEUE_BATCH`` keeps
        each claim's work bounded whatever ``trials`` says (10,000 in one insert took seconds).
        """
        ranges = {k: Range.from_dict(v) for k, v in setup["ranges"].items()}
        search = study.spec.recipe.coarse if stage == "coarse" else study.spec.recipe.refine
        if not counts["waiting"]:
            if search.sampler != "random":
                return self.optuna.ask(ostudy, stage, ranges)
            done = counts["complete"] + counts["pruned"] + counts["failed"]
            needed = setup["trials"] - done - counts["running"]
            self.optuna.enqueue_random(ostudy, study.spec, stage, ranges, min(needed, QUEUE_BATCH))
        return self.optuna.pop(ostudy)

    def quick_item(self, study: StudyRecord) -> WorkItem | Literal["wait"] | None:
        """The fast path of a claim, safe without the claim lock: a queued trial of the current
        search stage (started now), WAIT when plainly nothing can be handed out (a single stage
        is being worked on; every trial of the stage is out), or None: ask ``next_item``.

        Most claims end here, so workers are not served one at a time, and idle workers polling
        a busy study cost a few reads. Studies with a budget always take the careful path,
        which checks the budget before every trial. ``study`` is as read by the claim, a moment
        ago (anything it decides from that is checked again under the lock, or by the pop).
        """
        study_id = study.id
        budget = study.spec.budget
        if study.state != "running" or budget.trial_epochs is not None or budget.seconds:
            return None
        current = next((r for r in self.store.stages(study_id) if not r.finished), None)
        if current is None or current.status != "running":
            return None  # between stages: next_item decides what comes next
        if not is_search_stage(current.name):
            return WAIT  # one worker is doing the sanity checks, range test or final training
        setup = current.result
        ostudy = self.stage_study(study, current.name, setup["epochs"])
        trial = self.optuna.pop(ostudy)
        if trial is not None:
            return self._trial_item(study, current.name, setup, trial)
        counts = self.optuna.counts(ostudy)
        done = counts["complete"] + counts["pruned"] + counts["failed"]
        if counts["running"] and done + counts["running"] >= setup["trials"]:
            return WAIT  # the stage's last trials are out; it ends when they come back
        return None

    def _stage_setup(self, study: StudyRecord, stage: str, records: Records) -> dict[str, Any]:
        spec = study.spec
        if stage == "coarse":
            ranges = self._coarse_ranges(study, records)
            return {
                "ranges": {k: r.as_dict() for k, r in ranges.items()},
                "epochs": stage_epochs(spec, stage),
                "trials": spec.recipe.coarse.trials,
            }
        previous_stage = _previous_search_stage(stage)
        previous = records[previous_stage]
        prev_ranges = {k: Range.from_dict(v) for k, v in previous.result["ranges"].items()}
        ref = spec.recipe.refine
        top = _top(self.trials(study, previous_stage), ref.top_fraction, ref.top_min)
        best = self.ranked_trials(study)[:1]
        points = [t.params for t in top + best]
        ranges = narrow(points, prev_ranges, ref.margin)
        return {
            "ranges": {k: r.as_dict() for k, r in ranges.items()},
            "previous_ranges": {k: r.as_dict() for k, r in prev_ranges.items()},
            "narrowed_from": [t.number for t in top],
            "best_so_far": _trial_summary(best[0]) if best else None,
            "epochs": stage_epochs(spec, stage),
            "trials": ref.trials,
        }

    def _seed_first_trial(
        self, study: StudyRecord, stage: str, setup: dict[str, Any], records: Records
    ) -> None:
        """Queue the configuration a careful person would try first, before the random ones.

        Coarse: the range test's suggested LR with the spec's weight decay. Refine: the best
        configuration so far, now trained longer ("refine, train longer"). Both lie inside the
        stage's ranges. Only the driver that started the stage (under the claim lock) seeds it.
        """
        ranges = {k: Range.from_dict(v) for k, v in setup["ranges"].items()}
        if stage == "coarse":
            range_test = records.get("range_test")
            suggested = range_test.result.get("suggested_lr") if range_test else None
            if suggested is None:
                return
            first = {"lr": suggested, "weight_decay": study.spec.train.weight_decay}
            first |= {p: float(_field_value(study.spec, p)) for p in study.spec.search.extra}  # type: ignore[arg-type]
        else:
            best = setup.get("best_so_far")
            if best is None:
                return
            first = dict(best["params"])
        if not all(name in first and ranges[name].contains(first[name]) for name in ranges):
            return
        first = {name: first[name] for name in ranges}
        ostudy = self.stage_study(study, stage, setup["epochs"])
        attrs = {"stage": stage, "seeded": True}
        self.optuna.enqueue(ostudy, [(first, distributions(ranges), attrs)])

    def _coarse_ranges(self, study: StudyRecord, records: Records) -> dict[str, Range]:
        spec = study.spec
        range_test = records.get("range_test")
        lr = spec.search.lr
        if range_test is not None and "range" in range_test.result:
            found = range_test.result["range"]
            ranges = {"lr": Range(found["low"], found["high"])}
        else:
            ranges = {"lr": Range(lr.low, lr.high, lr.log)}
        wd = spec.search.weight_decay
        ranges["weight_decay"] = Range(wd.low, wd.high, wd.log)
        for path, dim in spec.search.extra.items():
            integer = isinstance(_field_value(spec, path), int)
            ranges[path] = Range(dim.low, dim.high, dim.log, integer)
        return ranges

    def _refine_skip_reason(self, study: StudyRecord, stage: str, records: Records) -> str | None:
        if stage in ("coarse", "refine-1"):
            return None
        previous = records.get(_previous_search_stage(stage))
        if previous is None or previous.status == "skipped":
            return "the previous round was skipped"
        gain = previous.result.get("gain", 0.0)
        min_gain = study.spec.recipe.refine.min_gain
        if gain <= min_gain:
            return f"the previous round gained {gain:.4f} <= min_gain {min_gain}"
        return None

    def _trial_item(
        self, study: StudyRecord, stage: str, setup: dict[str, Any], trial: FrozenTrial
    ) -> WorkItem:
        params = dict(trial.params)
        item_spec = trial_spec(study.spec, _spec_params(params), setup["epochs"])
        return WorkItem(
            study.id,
            study.name,
            stage,
            "trial",
            item_spec.model_dump(mode="json"),
            params=params,
            trial_id=trial._trial_id,
            trial_number=trial.number,
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

        A caller that has just read the study's state, or every epoch the trial reported so far
        (``progress``: metrics with their epoch, this one included), passes them and saves a
        query each; otherwise they are read."""
        state = study_state if study_state is not None else self.store.study_state(item.study_id)
        running = state == "running"
        if item.kind != "trial":
            return not running
        assert item.trial_id is not None
        assert item.trial_number is not None
        ostudy = self._item_study(item)
        value = metrics["val_accuracy"]
        curve = None
        if progress is not None:
            curve = {
                int(e["epoch"]): float(e["val_accuracy"]) for e in progress if "val_accuracy" in e
            }
            curve[epoch] = value
        prune = self.optuna.report(ostudy, item.trial_id, item.trial_number, epoch, value, curve)
        return prune or not running

    def finish(self, item: WorkItem, outcome: Outcome) -> None:
        """Record a finished item; finishing one twice changes nothing the second time.

        An outcome that does not fit the item raises :class:`OutcomeError` and records nothing.
        """
        check_outcome(item, outcome)
        if item.kind == "trial":
            self._finish_trial(item, outcome)
            return
        record = self.store.stage(item.study_id, item.stage)
        if record is None or record.finished:
            return
        if outcome.state == "failed" and outcome.retryable:
            self.store.update_stage(item.study_id, item.stage, status="pending")
            return
        if item.kind == "final" and outcome.state == "completed":
            self._finish_final(item, outcome)
            return
        self.store.update_stage(
            item.study_id,
            item.stage,
            status=outcome.state,
            result=outcome.result or {"reason": outcome.reason},
            trial_epochs=outcome.trial_epochs,
            seconds=outcome.seconds,
        )

    def _finish_final(self, item: WorkItem, outcome: Outcome) -> None:
        final, targeted = outcome.result["final"], outcome.result.get("targeted")
        if targeted is not None:
            position = len(plan(self.store.get_study(item.study_id).spec))
            self.store.start_stage(item.study_id, "targeted", position, targeted)
            self.store.update_stage(
                item.study_id,
                "targeted",
                status="completed" if targeted["ran"] else "skipped",
                result=targeted,
                trial_epochs=targeted["trial_epochs"],
                seconds=targeted["seconds"],
            )
        self.store.update_stage(
            item.study_id,
            "final",
            status="completed",
            result=final,
            trial_epochs=final["trial_epochs"],
            seconds=final["seconds"],
        )

    def _finish_trial(self, item: WorkItem, outcome: Outcome) -> None:
        assert item.trial_id is not None
        attrs: dict[str, Any] = {"history": outcome.history} if outcome.history else {}
        if outcome.state == "failed":
            ended = self._fail_trial(item, outcome.reason or "failed", outcome.retryable, attrs)
        else:
            state = TrialState.COMPLETE if outcome.state == "completed" else TrialState.PRUNED
            ended = self.optuna.finish(
                item.trial_id, state, outcome.value, attrs, _curve(outcome.history)
            )
        if ended:
            self.store.add_stage_compute(
                item.study_id, item.stage, outcome.trial_epochs, outcome.seconds
            )

    def _fail_trial(
        self, item: WorkItem, reason: str, retryable: bool, attrs: dict[str, Any]
    ) -> bool:
        """Fail the trial; retry its parameters (a new trial) if the failure was not theirs."""
        assert item.trial_id is not None
        frozen = self.store.optuna.get_trial(item.trial_id)
        retries = int(frozen.user_attrs.get("retries", 0))
        retry = retryable and retries < self.max_retries
        attrs = attrs | {"fail_reason": reason, "retried": retry}
        if not self.optuna.finish(item.trial_id, TrialState.FAIL, None, attrs):
            return False
        if retry:
            again = {
                "stage": frozen.user_attrs.get("stage"),
                "retry_of": frozen.number,
                "retries": retries + 1,
            }
            entry = (frozen.params, frozen.distributions, again)
            self.optuna.enqueue(self._item_study(item), [entry])
        return True

    def recover(self, study_id: int, reason: str = "interrupted: its process stopped") -> int:
        """After a crash: fail trials left RUNNING (retrying their params) and reopen stages.

        Only for a driver that knows nobody else is working on the study (the local runner at
        start-up); the server uses leases instead. Returns how many trials were failed.
        """
        study = self.store.get_study(study_id)
        failed = 0
        for record in self.store.stages(study_id):
            if record.status != "running":
                continue
            if record.name in SINGLE:
                self.store.update_stage(study_id, record.name, status="pending")
                continue
            ostudy = self.stage_study(study, record.name, record.result["epochs"])
            for frozen in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                item = self._trial_item(study, record.name, record.result, frozen)
                failed += self._fail_trial(item, reason, retryable=True, attrs={})
        return failed

    def fail_orphans(self, study_id: int, held: set[int], older_than: float, reason: str) -> int:
        """Fail (and retry) the study's server-made RUNNING trials that no lease in ``held``
        holds and that started over ``older_than`` seconds ago: a claim cut off between making
        the trial and recording its lease. Returns how many."""
        study = self.store.get_study(study_id)
        failed = 0
        for record in self.store.stages(study_id):
            if record.status != "running" or not is_search_stage(record.name):
                continue
            ostudy = self.stage_study(study, record.name, record.result["epochs"])
            for trial_id in self.optuna.running_trial_ids(ostudy, older_than):
                if trial_id not in held:
                    frozen = self.store.optuna.get_trial(trial_id)
                    item = self._trial_item(study, record.name, record.result, frozen)
                    failed += self._fail_trial(item, reason, retryable=True, attrs={})
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
            if is_search_stage(record.name) and "epochs" in record.result:
                ostudy = self.stage_study(study, record.name, record.result["epochs"])
                self.optuna.end_unheld(ostudy, held, f"the study failed: {reason}")
            self.store.update_stage(study_id, record.name, status="failed")

    def give_up_stage(self, study_id: int, stage: str, reason: str) -> None:
        """A single stage that cannot be done (its retries are spent): it fails, and so does
        the study, with ``reason``."""
        self.store.update_stage(study_id, stage, status="failed", result={"reason": reason})
        self.abandon(study_id, reason, set())

    def delete(self, study_id: int) -> None:
        """Delete a study: its Optuna studies, its stage rows, and itself."""
        study = self.store.get_study(study_id)
        for record in self.store.stages(study_id):
            # KeyError: a single stage, or a search stage that never asked for a trial
            with contextlib.suppress(KeyError):
                optuna.delete_study(
                    study_name=optuna_name(study.name, record.name), storage=self.store.optuna
                )
        self.optuna.forget(study_id)
        self.store.delete_study(study_id)

    # --- reading -----------------------------------------------------------------------------

    def _stage_record(self, study_id: int, stage: str) -> StageRecord:
        record = self.store.stage(study_id, stage)
        assert record is not None, stage
        return record

    def stage_study(self, study: StudyRecord, stage: str, epochs: int) -> optuna.Study:
        """The Optuna study of one search stage (created on first use)."""
        return self.optuna.study(study.id, study.name, study.spec, stage, epochs)

    def _item_study(self, item: WorkItem) -> optuna.Study:
        """The Optuna study of a trial item, without reading the study row when it is open."""
        spec = parse_spec(item.spec, f"work item {item.study}/{item.stage}")
        return self.optuna.study(item.study_id, item.study, spec, item.stage, spec.train.epochs)

    def trials(self, study: StudyRecord, stage: str) -> list[FrozenTrial]:
        """The Optuna trials of one search stage (empty before the stage has started)."""
        record = self.store.stage(study.id, stage)
        if record is None or "epochs" not in record.result:
            return []
        return self.stage_study(study, stage, record.result["epochs"]).get_trials(deepcopy=False)

    def ranked_trials(self, study: StudyRecord) -> list[FrozenTrial]:
        """Completed search trials of every round, best first; the longer-trained wins ties."""
        trials = []
        for record in self.store.stages(study.id):
            if is_search_stage(record.name) and "epochs" in record.result:
                ostudy = self.stage_study(study, record.name, record.result["epochs"])
                trials += ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return sorted(trials, key=lambda t: (t.value or 0.0, t.number), reverse=True)

    def _summarize(
        self, study: StudyRecord, stage: str, trials: list[FrozenTrial], over_budget: bool
    ) -> dict[str, Any]:
        counts = count_states(trials)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value or 0.0, default=None)
        summary: dict[str, Any] = {
            "counts": counts,
            "best": _trial_summary(best) if best else None,
            "budget_exhausted": over_budget,
        }
        if stage.startswith("refine-"):
            overall = self.ranked_trials(study)
            this_round = {t._trial_id for t in complete}
            before = [t.value or 0.0 for t in overall if t._trial_id not in this_round]
            best_now = overall[0].value or 0.0 if overall else 0.0
            summary["gain"] = best_now - max(before, default=0.0)
        return summary


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state; a failed trial whose parameters were retried counts as ``retried``."""
    counts = {"complete": 0, "pruned": 0, "failed": 0, "retried": 0, "running": 0, "waiting": 0}
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


def _over_budget(spec: StudySpec, records: Records, next_epochs: float) -> bool:
    """Would another trial of ``next_epochs`` overrun the study's budget?"""
    budget = spec.budget
    epochs = sum(r.trial_epochs for r in records.values())
    seconds = sum(r.seconds for r in records.values())
    if budget.trial_epochs is not None and epochs + next_epochs > budget.trial_epochs:
        return True
    return budget.seconds is not None and seconds >= budget.seconds


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


def _trial_summary(trial: FrozenTrial) -> dict[str, Any]:
    return {"number": trial.number, "value": trial.value, "params": dict(trial.params)}


def _curve(history: list[dict[str, Any]]) -> dict[int, float]:
    """Epoch -> validation accuracy of a trial's history (entries that hold both as numbers)."""
    curve = {}
    for entry in history:
        epoch, value = entry.get("epoch"), entry.get("val_accuracy")
        if _number(epoch) and _number(value) and 1 <= epoch <= 100_000:
            curve[int(epoch)] = float(value)
    return curve


def _number(x: object) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _spec_params(params: dict[str, Any]) -> dict[str, float]:
    return {param_path(k): v for k, v in params.items()}


def _previous_search_stage(stage: str) -> str:
    round_number = int(stage.split("-")[1])
    return "coarse" if round_number == 1 else f"refine-{round_number - 1}"


def _field_value(spec: StudySpec, path: str) -> object:
    node: object = spec
    for part in path.split("."):
        node = getattr(node, part)
    return node
