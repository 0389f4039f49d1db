"""Finished results kept on disk until the server acknowledges them.

A result is written (atomically: temp file, then rename) before the first delivery attempt and
deleted only after the server answered, so no finished work is lost to a blip or a restart.

Each worker has its own folder under a shared root, locked (``flock``) while the worker lives;
the lock goes with the process, however it ends. A worker starting up adopts the results left in
the unlocked folders beside its own (a worker that died, or was restarted under a new id) and
delivers them under their holder's id (the server takes a finish only from the worker that
claimed the item, and never applies one twice).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = directory / "files"  # model files its results name, by sha256
        self.checkpoints = directory / "checkpoints"  # a trial's, on their way (not kept)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(directory)
        if self._lock is None:
            raise RuntimeError(f"spool {directory} is in use by another worker")

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def adopt_orphans(self) -> int:
        """Move into this spool the results of dead workers' spools beside it (their folders
        unlocked); returns how many were adopted."""
        adopted = 0
        for sibling in sorted(self.directory.parent.iterdir()):
            if sibling == self.directory or not sibling.is_dir():
                continue
            held = _lock(sibling)
            if held is None:
                continue  # a live worker's
            with held:
                for path in sibling.glob("*.json"):
                    os.replace(path, self.directory / path.name)  # same file system: atomic
                    adopted += 1
                for leftover in sibling.glob(".*.tmp"):  # a write cut off before its rename
                    leftover.unlink(missing_ok=True)
                for model in sibling.glob("files/*.pt"):
                    self.files.mkdir(exist_ok=True)
                    os.replace(model, self.files / model.name)
                shutil.rmtree(sibling / "files", ignore_errors=True)
                shutil.rmtree(sibling / "checkpoints", ignore_errors=True)
            with contextlib.suppress(OSError):
                (sibling / ".lock").unlink()
                sibling.rmdir()
        return adopted

    def put(self, item_id: int, holder: str, outcome: dict[str, Any]) -> None:
        """Keep ``outcome`` of item ``item_id``, which worker ``holder`` claimed (only the
        holder may deliver it: a result adopted from a dead worker's spool keeps its id)."""
        temp = self.directory / f".{item_id}.json.tmp"
        temp.write_text(json.dumps({"holder": holder, "outcome": outcome}))
        os.replace(temp, self.directory / f"{item_id}.json")

    def pending(self) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
        """(item id, its holder, its outcome) of every kept result; a result spooled by an
        older version has no holder (None: the worker delivering it is taken to be it)."""
        for path in sorted(self.directory.glob("*.json")):
            data = json.loads(path.read_text())
            if isinstance(data, dict) and set(data) == {"holder", "outcome"}:
                yield int(path.stem), data["holder"], data["outcome"]
            else:
                yield int(path.stem), None, data

    def done(self, item_id: int, files: Sequence[str] = ()) -> None:
        """Forget a delivered result and the model files (by sha256) it named."""
        (self.directory / f"{item_id}.json").unlink(missing_ok=True)
        for sha256 in files:
            self.file(sha256).unlink(missing_ok=True)

    def file(self, sha256: str) -> Path:
        return self.files / f"{sha256}.pt"


def _lock(directory: Path) -> Any:
    """The folder's lock file, held exclusively; None if another process holds it (or the
    folder is gone: another worker adopted and removed it a moment ago)."""
    try:
        handle = (directory / ".lock").open("a")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
