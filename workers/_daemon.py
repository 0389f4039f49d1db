"""The worker loop: claim, train with reports, finish; back off when idle or cut off.

Exits are explicit so the loop is testable: ``burst`` (stop when nothing is left to claim) and
``max_trials``. Signals: the first SIGTERM/SIGINT lets the current item finish (warm), the second
stops it at its next report and hands it back as a retryable failure (cold).
"""

from __future__ import annotations

import logging
import random
import signal
import socket
import threading
from types import FrameType
from typing import Any

import httpx
import torch

from hpsearch.errors import HPSearchError
from hpsearch.recipe import Outcome, WorkItem, execute
from workers._client import ProtocolClient, Unreachable
from workers._spool import Spool

log = logging.getLogger("hpsearch.worker")


class Heartbeat:
    """A small thread renewing the lease every ``interval`` seconds while an item runs."""

    def __init__(self, client: ProtocolClient, item_id: int, interval: float) -> None:
        self.client, self.item_id, self.interval = client, item_id, interval
        self.lost = False  # the server says the item is no longer ours
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


class Worker:
    def __init__(
        self,
        client: ProtocolClient,
        device: torch.device,
        spool: Spool,
        *,
        burst: bool = False,
        max_trials: int | None = None,
        idle_seconds: float = 2.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.client, self.device, self.spool = client, device, spool
        self.burst, self.max_trials = burst, max_trials
        self.idle_seconds, self.max_backoff = idle_seconds, max_backoff
        self.warm_stop = threading.Event()
        self.cold_stop = threading.Event()

    def run(self) -> int:
        """Work until an exit condition; returns how many items were finished."""
        done, backoff = 0, self.idle_seconds
        self.deliver_spool()
        # Workers started together (a machine's GPUs, a fleet brought up at once) spread their
        # first claims over one idle wait instead of meeting the server at the same instant.
        self.warm_stop.wait(random.uniform(0, self.idle_seconds))
        while not self.warm_stop.is_set():
            try:
                # results kept while the server was away go first: their leases are running out
                self.deliver_spool(raise_unreachable=True)
                lease = self.client.claim(socket.gethostname(), [str(self.device)])
            except Unreachable as exc:
                log.warning(
                    "[%s] server unreachable (%s); retrying in %.0fs",
                    self.client.worker_id,
                    exc,
                    backoff,
                )
                self.warm_stop.wait(backoff)
                backoff = min(2 * backoff, self.max_backoff)
                continue
            backoff = self.idle_seconds
            if lease is None:
                if self.burst:
                    break
                # jittered, so workers started together do not keep asking together
                self.warm_stop.wait(self.idle_seconds * random.uniform(0.75, 1.25))
                continue
            self._work(lease)
            done += 1
            if self.max_trials is not None and done >= self.max_trials:
                break
        self.deliver_spool()
        return done

    def _work(self, lease: dict[str, Any]) -> None:
        item, item_id = WorkItem.from_dict(lease["item"]), int(lease["id"])
        log.info(
            "[%s] item %d: %s %s %s",
            self.client.worker_id,
            item_id,
            item.study,
            item.stage,
            item.params,
        )
        with Heartbeat(self.client, item_id, max(0.5, lease["lease_seconds"] / 3)) as beat:

            def report(epoch: int, metrics: dict[str, float]) -> bool:
                if self.cold_stop.is_set() or beat.lost:
                    return True
                try:
                    return self.client.report(item_id, epoch, metrics)
                except Unreachable:
                    return False  # train on; the result is spooled at the end
                except httpx.HTTPStatusError:  # the server no longer knows this item
                    return True

            try:
                outcome = execute(item, self.device, report)
            except HPSearchError as exc:  # e.g. the data set is missing on this machine
                outcome = Outcome(state="failed", reason=str(exc))
            except (RuntimeError, ValueError, OSError) as exc:  # CUDA OOM is a RuntimeError
                outcome = Outcome(state="failed", reason=f"{type(exc).__name__}: {exc}")
        if self.cold_stop.is_set():
            outcome = Outcome(state="failed", reason="worker shut down", retryable=True)
        self.spool.put(item_id, outcome.to_dict())
        self.deliver_spool()

    def deliver_spool(self, raise_unreachable: bool = False) -> None:
        """Send every spooled result; keep those the server could not take yet (and, with
        ``raise_unreachable``, let the caller back off)."""
        for item_id, outcome in self.spool.pending():
            try:
                applied = self.client.finish(item_id, outcome)
            except httpx.HTTPStatusError as exc:  # refused for good: resending cannot help
                log.error("[%s] result %d refused: %s", self.client.worker_id, item_id, exc)
                self.spool.done(item_id)
                continue
            except Unreachable as exc:
                log.warning(
                    "[%s] result %d kept for later: %s", self.client.worker_id, item_id, exc
                )
                if raise_unreachable:
                    raise
                return
            self.spool.done(item_id)
            log.info("[%s] item %d delivered (applied=%s)", self.client.worker_id, item_id, applied)

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
