"""The local driver (hpsearch run): a run started again takes its study over."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hpsearch.local import INTERRUPTED, LOCAL_LEASE_SECONDS, LocalCheckpoints
from hpsearch.scheduling import Scheduler, StageMachine
from hpsearch.stages._execute import execute
from hpsearch.storage import Store
from tests.conftest import CPU, tiny_study
from tests.hpsearch.scheduling.serving import first_trial


class Killed(BaseException):
    """The process dying mid-trial (nothing catches it, as nothing catches SIGKILL)."""


def test_a_local_run_started_again_goes_on_from_its_trials_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'local.db'}", tmp_path / "artifacts")
    # no refine round continues its trials: every checkpoint goes when its trial ends
    recipe = {"coarse": {"epochs": 5}, "refine": {"continue_top": 0}}
    study = store.create_study(tiny_study("local-ckpt", recipe=recipe))
    scheduler = Scheduler(StageMachine(store), LOCAL_LEASE_SECONDS, driver="local")
    lease = first_trial(scheduler, "local-1")
    monkeypatch.setattr(LocalCheckpoints, "every_seconds", 0.0)  # after every epoch

    def dies_at_epoch_3(epoch: int, metrics: dict[str, float]) -> bool:
        scheduler.report(lease.id, "local-1", epoch, metrics)
        if epoch == 3:
            raise Killed
        return False

    saved = LocalCheckpoints(scheduler, lease.id, "local-1")
    with pytest.raises(Killed):
        execute(lease.item, CPU, dies_at_epoch_3, checkpoints=saved)

    # the same command again: the run takes its study over, and the retry goes on from epoch 2
    # (the checkpoint after epoch 3 was never taken: it died reporting it)
    assert scheduler.take_over(study.id, INTERRUPTED) == 1
    retry = scheduler.claim("local-2", study_id=study.id)
    assert retry is not None
    assert retry.item.resume_epoch == 2
    reported: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reported.append(epoch)
        return scheduler.report(retry.id, "local-2", epoch, metrics)

    caplog.set_level(logging.INFO, "hpsearch.work")
    again = LocalCheckpoints(scheduler, retry.id, "local-2")
    outcome = execute(retry.item, CPU, report, checkpoints=again)
    assert outcome.state == "completed"
    assert [e.epoch for e in outcome.history] == reported == [1, 2, 3, 4, 5]
    assert outcome.trial_epochs == 3  # 1-2 were the first run's
    assert "continues at epoch 3 (its checkpoint)" in caplog.text
    scheduler.finish(retry.id, "local-2", outcome)
    assert not list((tmp_path / "artifacts" / "checkpoints").rglob("*.pt"))
