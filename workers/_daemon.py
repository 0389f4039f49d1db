"""The worker loop: claim, do the item with reports, finish; back off when idle or cut off.

Exits are explicit so the loop is testable: ``burst`` (stop when nothing is left to claim),
``idle_exit`` (when nothing was handed out for that long) and ``max_trials``. Signals: the first
SIGTERM/SIGINT lets the current item finish (warm), the second stops it at its next step and
hands it back as a retryable failure (cold).

Nothing an item does ends the worker: whatever it raises (out of memory, a bug, a bad spec) is
reported as the item's failure, with its type and message (``hpsearch.stages``'s ``ItemExecutor``,
the local runner's too), and the worker claims the next one. Only a token the server refuses ends
it. An epoch's report the server could not take is sent again (bounded), and an outcome it could
not take waits in the spool: no work is lost to a blip.

The loop does not train by itself: it is given what does an item (``Executor``). The daemon's
trains it (PyTorch, loaded then); the simulated worker (``workers.simulate``) makes results up.
"""

from __future__ import annotations

import logging
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hpsearch.client import ProtocolClient, Refused, Unreachable, UnreadableItem
from hpsearch.models import allowed_modules
from hpsearch.protocol import LeaseRead
from hpsearch.results import Outcome, WorkItem
from hpsearch.uploads import DatasetError, cache_dir, digest_of, is_uploaded
from workers._spool import Spool

if TYPE_CHECKING:
    import torch

log = logging.getLogger("hpsearch.worker")
ReportFn = Callable[[int, dict[str, float]], bool]
Executor = Callable[[WorkItem, ReportFn, Callable[[], bool], "Checkpoints"], Outcome]
"""``execute(item, report, cancelled, checkpoints)``: do the item; never raises (a failure is an
outcome)."""
CHECKPOINT_SECONDS = 60.0
REPORT_WAITS = (0.5, 1.0, 2.0)  # seconds before each resend of an epoch's report


class Heartbeat:
    """A small thread renewing the lease every ``interval`` seconds while an item runs."""

    def __init__(self, client: ProtocolClient, item_id: int, interval: float) -> None:
        self.client, self.item_id, self.interval = client, item_id, interval
        self.lost = False  # the server says the item is no longer ours (or its study stopped)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.client.heartbeat(self.item_id):
                    self.lost = True
            except Unreachable as exc:  # keep training; the lease may survive the blip
                log.warning("[%s] heartbeat failed: %s", self.client.worker_id, exc)
            except Refused as exc:  # the item is gone or not ours: give it up
                log.warning("[%s] heartbeat refused: %s", self.client.worker_id, exc)
                self.lost = True


class Reporter:
    """Sends a trial's epochs in order. An epoch the server could not take (no answer, a 503
    while its database reconnects) is sent again a few times, then kept and sent before the
    next epoch and before the finish: the pruner sees every epoch, late rather than never."""

    def __init__(self, client: ProtocolClient, item_id: int, stop: threading.Event) -> None:
        self.client, self.item_id, self.stop = client, item_id, stop
        self.unsent: dict[int, dict[str, float]] = {}

    def __call__(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Report ``epoch``; True means stop (pruned, the study stopped, the item is gone)."""
        self.unsent[epoch] = metrics
        return self.flush()

    def flush(self) -> bool:
        """Send what is unsent; True if the server said stop. While epochs are left over from
        an earlier call (the server was unreachable then), each epoch gets one try rather than
        the whole series of waits."""
        waits = REPORT_WAITS if len(self.unsent) == 1 else ()
        for epoch in sorted(self.unsent):
            for wait in (*waits, None):
                try:
                    prune = self.client.report(self.item_id, epoch, self.unsent[epoch])
                except Unreachable as exc:
                    if wait is None or self.stop.wait(wait):
                        log.warning(
                            "[%s] epoch %d of item %d kept for later: %s",
                            self.client.worker_id,
                            epoch,
                            self.item_id,
                            exc,
                        )
                        return False  # train on; sent with the next epoch or the finish
                    continue
                except Refused as exc:  # the item is gone or not ours: stop training it
                    log.warning("[%s] report refused: %s", self.client.worker_id, exc)
                    return True
                del self.unsent[epoch]
                if prune:
                    return True
                break
        return False


class Checkpoints:
    """A trial's checkpoints on this worker: each written to the spool, sent to the server (a
    failed upload is logged and training goes on: the next one may pass) and deleted; the one a
    retried trial goes on from, fetched (``hpsearch.recipe``'s ``TrialCheckpoints``)."""

    def __init__(
        self, client: ProtocolClient, item_id: int, folder: Path, every_seconds: float
    ) -> None:
        self.client, self.item_id, self.folder = client, item_id, folder
        self.every_seconds = every_seconds

    def save(self, state: dict[str, Any], epoch: int) -> None:
        from hpsearch.training import write_checkpoint

        path = self.folder / f"{self.item_id}.pt"
        try:
            write_checkpoint(state, path)
            self.client.upload_checkpoint(self.item_id, path, epoch)
        except (Unreachable, Refused, OSError) as exc:
            log.warning("[%s] checkpoint of item %d not kept: %s", self.who, self.item_id, exc)
        finally:
            path.unlink(missing_ok=True)

    def fetch(self) -> Path | None:
        dest = self.fetched
        try:
            self.client.download_checkpoint(self.item_id, dest)
        except (Unreachable, Refused, DatasetError, OSError) as exc:
            log.warning(
                "[%s] item %d starts at epoch 1: its checkpoint: %s", self.who, self.item_id, exc
            )
            return None
        return dest

    @property
    def fetched(self) -> Path:
        return self.folder / f"{self.item_id}-resume.pt"

    @property
    def who(self) -> str:
        return self.client.worker_id


class Worker:
    def __init__(
        self,
        client: ProtocolClient,
        device: torch.device | str,
        spool: Spool,
        *,
        burst: bool = False,
        max_trials: int | None = None,
        idle_seconds: float = 2.0,
        max_backoff: float = 30.0,
        idle_exit: float | None = None,
        execute: Executor | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        self.client, self.device, self.spool = client, device, spool
        self.burst, self.max_trials = burst, max_trials
        self.idle_seconds, self.max_backoff = idle_seconds, max_backoff
        self.idle_exit = 0.0 if burst else idle_exit
        self.execute = execute or _trainer(client.worker_id, device, spool.files)
        self.checkpoint_seconds = checkpoint_seconds  # a trial's, at most one per this long
        self.warm_stop = threading.Event()
        self.cold_stop = threading.Event()
        self.after_item: Callable[[LeaseRead, float], None] | None = None  # lease, began

    def run(self) -> int:
        """Work until an exit condition; returns how many items were finished. A token the
        server refuses raises :class:`Refused` (nothing else ends the loop early)."""
        done, backoff, idle_since = 0, self.idle_seconds, None
        server = getattr(self.client, "server", "the server")
        log.info("[%s] working on %s for %s", self.client.worker_id, self.device, server)
        self.deliver_spool()
        # Workers started together (a machine's GPUs, a fleet brought up at once) spread their
        # first claims over one idle wait instead of meeting the server at the same instant.
        self.warm_stop.wait(random.uniform(0, self.idle_seconds))
        while not self.warm_stop.is_set():
            began = time.perf_counter()
            try:
                # results kept while the server was away go first: their leases are running out
                self.deliver_spool(raise_unreachable=True)
                lease = self.client.claim(
                    socket.gethostname(), [str(self.device)], allowed_modules()
                )
            except UnreadableItem as exc:  # a server of another version: the item fails
                self._fail_unread(exc)
                continue
            except (Unreachable, Refused) as exc:
                if isinstance(exc, Refused) and exc.bad_token:
                    raise
                self._back_off(exc, backoff)
                backoff = min(2 * backoff, self.max_backoff)
                continue
            backoff = self.idle_seconds
            if lease is None:
                idle_since = idle_since or time.monotonic()
                if self.idle_exit is not None and time.monotonic() - idle_since >= self.idle_exit:
                    break
                # jittered, so workers started together do not keep asking together
                self.warm_stop.wait(self.idle_seconds * random.uniform(0.75, 1.25))
                continue
            idle_since = None
            self._work(lease)
            if self.after_item is not None:
                self.after_item(lease, began)
            done += 1
            if self.max_trials is not None and done >= self.max_trials:
                break
        self.deliver_spool()
        return done

    def _back_off(self, exc: Exception, wait: float) -> None:
        what = "server unreachable" if isinstance(exc, Unreachable) else "claim refused"
        log.warning("[%s] %s (%s); retrying in %.0fs", self.client.worker_id, what, exc, wait)
        self.warm_stop.wait(wait)

    def _fail_unread(self, exc: UnreadableItem) -> None:
        outcome = Outcome(state="failed", reason=exc.reason)
        self.spool.put(exc.item_id, self.client.worker_id, outcome.to_dict())
        self.deliver_spool()

    def _work(self, lease: LeaseRead) -> None:
        item_id, item = lease.id, lease.item
        log.info(
            "[%s] item %d: %s %s %s",
            self.client.worker_id,
            item_id,
            item.study,
            item.stage,
            item.params,
        )
        with Heartbeat(self.client, item_id, max(0.5, lease.lease_seconds / 3)) as beat:
            reporter = Reporter(self.client, item_id, self.cold_stop)

            def report(epoch: int, metrics: dict[str, float]) -> bool:
                return self.cold_stop.is_set() or beat.lost or reporter(epoch, metrics)

            checkpoints = Checkpoints(
                self.client, item_id, self.spool.checkpoints, self.checkpoint_seconds
            )
            try:
                outcome = self._fetch_data(item) or self.execute(
                    item, report, self._give_up_when(item, beat), checkpoints
                )
            finally:
                checkpoints.fetched.unlink(missing_ok=True)
            if reporter.unsent:
                reporter.flush()  # the server rebuilds any still missing from the history
        if self.cold_stop.is_set():
            outcome = Outcome(state="failed", reason="worker shut down", retryable=True)
        self.spool.put(item_id, self.client.worker_id, outcome.to_dict())
        self.deliver_spool()

    def _fetch_data(self, item: WorkItem) -> Outcome | None:
        """Download the item's uploaded dataset and the model file its ``model.init_from``
        names into this machine's cache, once each (their hash checked); the item's failed
        outcome if that cannot be done, else None."""
        wanted = [
            ("dataset", item.spec.dataset.path),
            ("model.init_from", item.spec.model.init_from),
        ]
        for what, path in wanted:
            if path is None or not is_uploaded(path):
                continue
            try:
                digest = digest_of(path)
                dest = cache_dir() / digest
                if dest.is_file():
                    continue
                log.info("[%s] fetching %s %s", self.client.worker_id, what, path)
                self.client.fetch_dataset(digest, dest)
            except Unreachable as exc:  # the server is away: another worker, or later, may
                return Outcome(state="failed", reason=f"{what} {path}: {exc}", retryable=True)
            except (DatasetError, Refused, OSError) as exc:
                return Outcome(state="failed", reason=f"{what} {path}: {exc}")
        return None

    def _give_up_when(self, item: WorkItem, beat: Heartbeat) -> Callable[[], bool]:
        """When to give the item up part-way: at a cold stop; a single stage (sanity checks,
        range test, final training) also when its study stops or the lease is lost (a trial
        is pruned at its next report instead)."""
        if item.kind == "trial":
            return self.cold_stop.is_set
        return lambda: self.cold_stop.is_set() or beat.lost

    def deliver_spool(self, raise_unreachable: bool = False) -> None:
        """Send every spooled result, the model files it names first; keep those the server
        could not take yet (and, with ``raise_unreachable``, let the caller back off)."""
        for item_id, holder, data in self.spool.pending():
            try:
                outcome = Outcome.from_dict(data)
            except ValidationError as exc:  # written by another version: the server would refuse it
                log.error("[%s] result %d unreadable: %s", self.client.worker_id, item_id, exc)
                self.spool.done(item_id, [])
                continue
            files = [file.sha256 for file in outcome.files()]
            try:
                outcome = self._send_files(item_id, holder, outcome, files)
                applied = self.client.finish(item_id, outcome, holder)
            except Refused as exc:  # refused for good: resending cannot help
                log.error("[%s] result %d refused: %s", self.client.worker_id, item_id, exc)
                self.spool.done(item_id, files)
                continue
            except Unreachable as exc:
                log.warning(
                    "[%s] result %d kept for later: %s", self.client.worker_id, item_id, exc
                )
                if raise_unreachable:
                    raise
                return
            self.spool.done(item_id, files)
            log.info("[%s] item %d delivered (applied=%s)", self.client.worker_id, item_id, applied)

    def _send_files(
        self, item_id: int, holder: str | None, outcome: Outcome, files: list[str]
    ) -> Outcome:
        """Upload the model files an outcome names; the outcome to finish with: itself, or, when
        the server cannot keep a file (no room, another hash), the item failed with the reason.
        An item that is gone or not ours raises :class:`Refused`."""
        try:
            for sha256 in files:
                if self.spool.file(sha256).is_file():  # else the finish says it is missing
                    self.client.upload_file(item_id, self.spool.file(sha256), sha256, holder)
        except Refused as exc:
            if exc.status in (404, 409):
                raise
            log.error("[%s] model file of item %d refused: %s", self.client.worker_id, item_id, exc)
            reason = f"the server did not keep the model file: {exc.detail}"
            # not retried: another worker's file would meet the same full disk, and a stage
            # handed back this way is not counted against a bound (the study says why instead)
            return Outcome(state="failed", reason=reason)
        return outcome

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.warm_stop.is_set():
                log.warning(
                    "[%s] second signal: stopping the current item now", self.client.worker_id
                )
                self.cold_stop.set()
            else:
                log.warning("[%s] finishing the current item, then exiting", self.client.worker_id)
                self.warm_stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)


def _trainer(worker: str, device: torch.device | str, outbox: Path) -> Executor:
    """What does an item on a worker machine: it trains, on ``device`` (PyTorch loads here),
    and saves the models it makes in ``outbox``."""
    from hpsearch.stages import ItemExecutor

    executor = ItemExecutor(worker)

    def execute(
        item: WorkItem, report: ReportFn, cancelled: Callable[[], bool], checkpoints: Checkpoints
    ) -> Outcome:
        return executor.execute(
            item,
            device,  # type: ignore[arg-type]
            report,
            cancelled,
            outbox=outbox,
            checkpoints=checkpoints,
        )

    return execute
