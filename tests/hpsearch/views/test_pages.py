"""Pages of search trials: filtered, sorted and paged as the trials table and the API ask."""

from __future__ import annotations

import pytest

from hpsearch.scheduling import StageMachine
from hpsearch.storage import StudyRecord
from hpsearch.views import BadQueryError, best_of, trial_detail, trial_page, trial_points


def test_trials_sorted_by_value_come_best_first_and_page_without_gaps(
    machine: StageMachine, finished: StudyRecord
) -> None:
    everything = trial_page(machine, finished, state="complete", sort="value", limit=1000)
    values = [t.value or 0.0 for t in everything.trials]
    assert len(values) == everything.total > 10
    assert values == sorted(values, reverse=True)
    pages = [
        trial_page(machine, finished, state="complete", sort="value", limit=4, offset=offset)
        for offset in range(0, everything.total, 4)
    ]
    assert [t.model_dump() for p in pages for t in p.trials] == [
        t.model_dump() for t in everything.trials
    ]
    assert [t.model_dump() for t in best_of(machine, finished, 3)] == [
        t.model_dump() for t in everything.trials[:3]
    ]


def test_a_stage_filter_keeps_that_stage_only(machine: StageMachine, finished: StudyRecord) -> None:
    coarse = trial_page(machine, finished, stage="coarse", limit=1000)
    assert coarse.total == finished.spec.recipe.coarse.trials
    assert {t.stage for t in coarse.trials} == {"coarse"}
    assert [t.number for t in coarse.trials] == sorted(t.number for t in coarse.trials)


def test_every_trial_is_a_point_with_its_parameters(
    machine: StageMachine, finished: StudyRecord
) -> None:
    points = trial_points(machine, finished)
    total = trial_page(machine, finished, limit=1000).total
    assert len(points.stage) == len(points.number) == len(points.value) == total
    columns = points.model_dump()
    assert len(columns["lr"]) == len(columns["weight_decay"]) == total


def test_one_trial_reads_in_full_and_a_missing_one_names_what_is_wrong(
    machine: StageMachine, finished: StudyRecord
) -> None:
    detail = trial_detail(machine, finished, "coarse", 0)
    assert (detail.stage, detail.number) == ("coarse", 0)
    assert detail.history  # every epoch it reported
    assert set(detail.distributions) == {"lr", "weight_decay"}
    with pytest.raises(BadQueryError, match=r"path\.number: .*has no trial 999"):
        trial_detail(machine, finished, "coarse", 999)
    with pytest.raises(BadQueryError, match=r"path\.stage"):
        trial_detail(machine, finished, "refine-9", 0)


def test_sorting_by_what_the_study_does_not_have_is_refused(
    machine: StageMachine, finished: StudyRecord
) -> None:
    with pytest.raises(BadQueryError, match="sort"):
        trial_page(machine, finished, sort="model.dropout")
