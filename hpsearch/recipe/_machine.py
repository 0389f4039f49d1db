"""The recipe as a stage machine over stored state.

Given what the store holds for a study, :meth:`StageMachine.next_item` answers "what is the next
work item" and :meth:`StageMachine.finish` records "what follows from this finished one". The
machine keeps nothing between calls: every decision is read from the store, so the local runner and
the API server drive the very same machine, and a killed driver resumes where the store says.

Stages, in order: ``sanity``, ``range_test``, ``coarse``, ``refine-1`` .. ``refine-R``, ``final``
(and ``targeted``, written by the final item when the diagnosis called for it). Coarse and refine
trials are Optuna trials in one Optuna study per stage, named ``<study>:<stage>``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from hpsearch.recipe._items import Outcome, WorkItem, param_name, param_path
from hpsearch.recipe._ranges import Range, narrow, top_count
from hpsearch.recipe._sampling import make_pruner, make_sampler
from hpsearch.spec import StudySpec, spec_with
from hpsearch.storage import Store, StudyRecord

WAIT: Literal["wait"] = "wait"  # nothing to hand out until running work finishes
DONE: Literal["done"] = "done"  # the study is over (completed, failed or stopped)
SINGLE = ("sanity", "range_test", "final")
MAX_RETRIES = 2


def plan(spec: StudySpec) -> list[str]:
    """The study's stages in order."""
    rounds = [f"refine-{r}" for r in range(1, spec.recipe.refine.rounds + 1)]
    return ["sanity", "range_test", "coarse", *rounds, "final"]


def optuna_name(study: str, stage: str) -> str:
    return f"{study}:{stage}"


class StageMachine:
    """Hands out work items for studies in ``store`` and records what comes back."""

    def __init__(self, store: Store, max_retries: int = MAX_RETRIES) -> None:
        self.store = store
        self.max_retries = max_retries  # re-enqueues of an interrupted trial's parameters
        self._studies: dict[str, optuna.Study] = {}

    # --- what next -------------------------------------------------------------------------

    def next_item(self, study_id: int) -> WorkItem | Literal["wait", "done"]:
        study = self.store.get_study(study_id)
        if study.state != "running":
            return DONE
        for position, name in enumerate(plan(study.spec)):
            record = self.store.stage(study_id, name)
            if record is not None and record.finished:
                if record.status == "failed" and self._failure_stops(study, name):
                    return DONE
                continue
            if name in SINGLE:
                if not self.store.claim_stage(study_id, name, position):
                    return WAIT  # claimed by another driver, still running
                return self._single_item(study, name)
            step = self._trial_stage(study, name, position)
            if step is not None:
                return step
        self.store.set_study_state(study_id, "completed")
        return DONE

    def _failure_stops(self, study: StudyRecord, stage: str) -> bool:
        """A failed sanity check (unless told to continue) or final training ends the study."""
        if stage == "sanity" and study.spec.recipe.sanity.continue_on_failure:
            return False
        if stage not in ("sanity", "final"):
            return False
        record = self.store.stage(study.id, stage)
        result = record.result if record else {}
        if stage == "sanity" and "verdict" in result:
            message = f"sanity checks failed: {result['verdict']}: {result.get('advice')}"
        elif stage == "sanity":  # the checks could not run at all
            message = f"sanity checks failed: {result.get('reason')}"
        else:
            message = f"final training failed: {result.get('reason')}"
        self.store.set_study_state(study.id, "failed", message)
        return True

    def _single_item(self, study: StudyRecord, stage: str) -> WorkItem:
        spec = study.spec
        if stage != "final":
            return WorkItem(study.id, study.name, stage, stage, spec.model_dump(mode="json"))  # type: ignore[arg-type]
        configs = [_spec_params(t.params) for t in self.ranked_trials(study)]
        configs = configs[: spec.recipe.final.ensemble_top_k] or [
            {"train.lr": spec.train.lr, "train.weight_decay": spec.train.weight_decay}
        ]
        left = None
        if spec.budget.trial_epochs is not None:
            left = max(0.0, spec.budget.trial_epochs - self._spent(study.id))
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
        self, study: StudyRecord, stage: str, position: int
    ) -> WorkItem | Literal["wait"] | None:
        """The next trial of a search stage, WAIT, or None once the stage is finished."""
        record = self.store.stage(study.id, stage)
        if record is None:
            skip = self._refine_skip_reason(study, stage)
            if skip is None and self._over_budget(study, _stage_epochs(study.spec, stage)):
                skip = "the study's budget is spent"
            if skip is not None:
                self.store.start_stage(study.id, stage, position, {"reason": skip})
                self.store.update_stage(study.id, stage, status="skipped")
                return None
            record = self.store.start_stage(
                study.id, stage, position, self._stage_setup(study, stage)
            )
            self._seed_first_trial(study, stage, record.result)
        setup = record.result
        ostudy = self._optuna_study(study, stage, setup["epochs"])
        trials = ostudy.get_trials(deepcopy=False)
        counts = _counts(trials)
        done = counts["complete"] + counts["pruned"] + counts["failed"]
        over_budget = self._over_budget(study, setup["epochs"])
        if done + counts["running"] < setup["trials"] and not over_budget:
            return self._ask(study, stage, ostudy, setup)
        if counts["running"]:
            return WAIT
        summary = self._summarize(study, stage, trials, over_budget)
        self.store.update_stage(study.id, stage, status="completed", result=setup | summary)
        return None

    def _stage_setup(self, study: StudyRecord, stage: str) -> dict[str, Any]:
        spec = study.spec
        if stage == "coarse":
            ranges = self._coarse_ranges(study)
            return {
                "ranges": {k: r.as_dict() for k, r in ranges.items()},
                "epochs": _stage_epochs(spec, stage),
                "trials": spec.recipe.coarse.trials,
            }
        previous_stage = _previous_search_stage(stage)
        previous = self.store.stage(study.id, previous_stage)
        assert previous is not None
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
            "epochs": _stage_epochs(spec, stage),
            "trials": ref.trials,
        }

    def _seed_first_trial(self, study: StudyRecord, stage: str, setup: dict[str, Any]) -> None:
        """Queue the configuration a careful person would try first, before the random ones.

        Coarse: the range test's suggested LR with the spec's weight decay. Refine: the best
        configuration so far, now trained longer ("refine, train longer"). Both lie inside the
        stage's ranges; ``skip_if_exists`` keeps a second driver from queueing it twice.
        """
        ranges = {k: Range.from_dict(v) for k, v in setup["ranges"].items()}
        if stage == "coarse":
            range_test = self.store.stage(study.id, "range_test")
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
        ostudy = self._optuna_study(study, stage, setup["epochs"])
        ostudy.enqueue_trial(
            first, user_attrs={"stage": stage, "seeded": True}, skip_if_exists=True
        )

    def _coarse_ranges(self, study: StudyRecord) -> dict[str, Range]:
        spec = study.spec
        range_test = self.store.stage(study.id, "range_test")
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

    def _refine_skip_reason(self, study: StudyRecord, stage: str) -> str | None:
        if stage in ("coarse", "refine-1"):
            return None
        previous = self.store.stage(study.id, _previous_search_stage(stage))
        if previous is None or previous.status == "skipped":
            return "the previous round was skipped"
        gain = previous.result.get("gain", 0.0)
        min_gain = study.spec.recipe.refine.min_gain
        if gain <= min_gain:
            return f"the previous round gained {gain:.4f} <= min_gain {min_gain}"
        return None

    def _ask(
        self, study: StudyRecord, stage: str, ostudy: optuna.Study, setup: dict[str, Any]
    ) -> WorkItem:
        ranges = {k: Range.from_dict(v) for k, v in setup["ranges"].items()}
        trial = ostudy.ask(fixed_distributions=_distributions(ranges))
        trial.set_user_attr("stage", stage)
        params = dict(trial.params)
        item_spec = spec_with(
            study.spec,
            {
                **_spec_params(params),
                "train.epochs": setup["epochs"],
                "train.schedule": "constant",  # the notes: no LR decay while searching
                "train.early_stopping_patience": None,
                "train.tta_flip": False,
            },
        )
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

    def report(self, item: WorkItem, epoch: int, metrics: dict[str, float]) -> bool:
        """Record a trial's epoch; True means "stop now" (pruned, or the study stopped)."""
        study = self.store.get_study(item.study_id)
        if item.kind != "trial":
            return study.state != "running"
        storage = self.store.optuna
        frozen = storage.get_trial(item.trial_id)  # type: ignore[arg-type]
        if frozen.state.is_finished():
            return True
        history = [*list(frozen.user_attrs.get("history", [])), {"epoch": epoch, **metrics}]
        storage.set_trial_user_attr(frozen._trial_id, "history", history)
        setup = self._setup(study, item.stage)
        trial = optuna.trial.Trial(
            self._optuna_study(study, item.stage, setup["epochs"]), frozen._trial_id
        )
        trial.report(metrics["val_accuracy"], epoch)
        return study.state != "running" or trial.should_prune()

    def finish(self, item: WorkItem, outcome: Outcome) -> None:
        """Record a finished item; finishing one twice changes nothing the second time."""
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
        final, targeted = outcome.result["final"], outcome.result["targeted"]
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
        study = self.store.get_study(item.study_id)
        storage = self.store.optuna
        assert item.trial_id is not None
        assert item.trial_number is not None
        frozen = storage.get_trial(item.trial_id)
        if frozen.state.is_finished():
            return
        if outcome.history:
            storage.set_trial_user_attr(item.trial_id, "history", outcome.history)
        storage.set_trial_user_attr(item.trial_id, "seconds", outcome.seconds)
        ostudy = self._optuna_study(study, item.stage, self._setup(study, item.stage)["epochs"])
        if outcome.state == "completed":
            ostudy.tell(item.trial_number, outcome.value, skip_if_finished=True)
        elif outcome.state == "pruned":
            ostudy.tell(item.trial_number, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            self._fail_trial(ostudy, frozen, outcome.reason or "failed", outcome.retryable)
        self.store.add_stage_compute(
            item.study_id, item.stage, outcome.trial_epochs, outcome.seconds
        )

    def _fail_trial(
        self, ostudy: optuna.Study, frozen: FrozenTrial, reason: str, retryable: bool
    ) -> None:
        retries = int(frozen.user_attrs.get("retries", 0))
        retry = retryable and retries < self.max_retries
        storage = self.store.optuna
        storage.set_trial_user_attr(frozen._trial_id, "fail_reason", reason)
        storage.set_trial_user_attr(frozen._trial_id, "retried", retry)
        ostudy.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
        if retry:
            ostudy.enqueue_trial(
                frozen.params,
                user_attrs={
                    "stage": frozen.user_attrs.get("stage"),
                    "retry_of": frozen.number,
                    "retries": retries + 1,
                },
            )

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
            ostudy = self._optuna_study(study, record.name, record.result["epochs"])
            for frozen in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                self._fail_trial(ostudy, frozen, reason, retryable=True)
                failed += 1
        return failed

    def delete(self, study_id: int) -> None:
        """Delete a study: its Optuna studies, its stage rows, and itself."""
        study = self.store.get_study(study_id)
        for record in self.store.stages(study_id):
            name = optuna_name(study.name, record.name)
            self._studies.pop(name, None)
            # KeyError: a single stage, or a search stage that never asked for a trial
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=name, storage=self.store.optuna)
        self.store.delete_study(study_id)

    # --- reading -----------------------------------------------------------------------------

    def _optuna_study(self, study: StudyRecord, stage: str, epochs: int) -> optuna.Study:
        name = optuna_name(study.name, stage)
        if name not in self._studies:
            search = study.spec.recipe.coarse if stage == "coarse" else study.spec.recipe.refine
            self._studies[name] = optuna.create_study(
                study_name=name,
                storage=self.store.optuna,
                sampler=make_sampler(search.sampler, study.spec.seed, stage),
                pruner=make_pruner(search.pruner, epochs),
                direction="maximize",
                load_if_exists=True,
            )
            self._studies[name].set_user_attr("hpsearch_study", study.name)
            self._studies[name].set_user_attr("stage", stage)
        return self._studies[name]

    def _setup(self, study: StudyRecord, stage: str) -> dict[str, Any]:
        record = self.store.stage(study.id, stage)
        assert record is not None, stage
        return record.result

    def trials(self, study: StudyRecord, stage: str) -> list[FrozenTrial]:
        """The Optuna trials of one search stage (empty before the stage has started)."""
        record = self.store.stage(study.id, stage)
        if record is None or "epochs" not in record.result:
            return []
        return self._optuna_study(study, stage, record.result["epochs"]).get_trials(deepcopy=False)

    def ranked_trials(self, study: StudyRecord) -> list[FrozenTrial]:
        """Completed search trials of every round, best first; the longer-trained wins ties."""
        trials = []
        for record in self.store.stages(study.id):
            if record.name == "coarse" or record.name.startswith("refine-"):
                trials += [
                    t for t in self.trials(study, record.name) if t.state == TrialState.COMPLETE
                ]
        return sorted(trials, key=lambda t: (t.value or 0.0, t.number), reverse=True)

    def _spent(self, study_id: int) -> float:
        return sum(r.trial_epochs for r in self.store.stages(study_id))

    def _over_budget(self, study: StudyRecord, next_epochs: float) -> bool:
        """Would another trial of ``next_epochs`` overrun the study's budget?"""
        budget = study.spec.budget
        records = self.store.stages(study.id)
        epochs = sum(r.trial_epochs for r in records)
        seconds = sum(r.seconds for r in records)
        if budget.trial_epochs is not None and epochs + next_epochs > budget.trial_epochs:
            return True
        return budget.seconds is not None and seconds >= budget.seconds

    def _summarize(
        self, study: StudyRecord, stage: str, trials: list[FrozenTrial], over_budget: bool
    ) -> dict[str, Any]:
        counts = _counts(trials)
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


def _counts(trials: list[FrozenTrial]) -> dict[str, int]:
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


def _distributions(ranges: dict[str, Range]) -> dict[str, BaseDistribution]:
    out: dict[str, BaseDistribution] = {}
    for name, r in ranges.items():
        if r.integer:
            out[name] = IntDistribution(int(-(-r.low // 1)), int(r.high // 1), log=r.log)
        else:
            out[name] = FloatDistribution(r.low, r.high, log=r.log)
    return out


def _spec_params(params: dict[str, Any]) -> dict[str, float]:
    return {param_path(k): v for k, v in params.items()}


def _stage_epochs(spec: StudySpec, stage: str) -> int:
    """Epochs of each trial of a search stage: coarse, or coarse times the refine factor."""
    if stage == "coarse":
        return spec.recipe.coarse.epochs
    return round(spec.recipe.coarse.epochs * spec.recipe.refine.epochs_factor)


def _previous_search_stage(stage: str) -> str:
    round_number = int(stage.split("-")[1])
    return "coarse" if round_number == 1 else f"refine-{round_number - 1}"


def _field_value(spec: StudySpec, path: str) -> object:
    node: object = spec
    for part in path.split("."):
        node = getattr(node, part)
    return node


def summary(machine: StageMachine, study_id: int) -> dict[str, Any]:
    """What a person or a script wants to know about a study: stages, best, diagnosis, compute."""
    store = machine.store
    study = store.get_study(study_id)
    records = {r.name: r for r in store.stages(study_id)}
    stages = []
    for name in [*plan(study.spec), "targeted"]:
        record = records.get(name)
        if record is None:
            if name != "targeted":
                stages.append({"name": name, "status": "pending"})
            continue
        entry = record.as_dict()
        if (name == "coarse" or name.startswith("refine-")) and "epochs" in record.result:
            entry["counts"] = _counts(machine.trials(study, name))
        stages.append(entry)
    ranked = machine.ranked_trials(study)
    final = records.get("final")
    if final is not None and final.status == "completed":
        result = final.result
        best = {
            "params": {param_name(k): v for k, v in result["params"].items()},
            "val_accuracy": result["val_accuracy"],
            "test_accuracy": result["test_accuracy"],
        }
        diagnosis = result["diagnosis"]
    else:
        best = {
            "params": dict(ranked[0].params) if ranked else {},
            "val_accuracy": ranked[0].value if ranked else None,
            "test_accuracy": None,
        }
        diagnosis = None
    return {
        "study": study.name,
        "state": study.state,
        "message": study.message,
        "stages": stages,
        "best": best,
        "diagnosis": diagnosis,
        "compute": {
            r.name: {"trial_epochs": r.trial_epochs, "seconds": r.seconds} for r in records.values()
        },
    }
