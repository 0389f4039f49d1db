"""Model files kept with a study, in Optuna's artifact store (``optuna.artifacts``), so that
optuna-dashboard lists and serves them as it does any study's artifacts.

The store is a directory (``FileSystemArtifactStore``): beside a SQLite database
(``<db>-artifacts``), or ``hpsearch-artifacts`` in the working directory for a server database,
unless named (``HPSEARCH_ARTIFACT_DIR``, ``--artifacts``). A file arrives first in its
``.incoming`` folder, named by its sha256: a worker's upload, checked against that hash as it
arrives, or a local run's file written there directly. Only a finish that names the file moves it
into the store and records it on an Optuna trial or study; nothing is referenced before it is
whole.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactSpaceError,
    ArtifactWriteError,
)

if TYPE_CHECKING:
    import optuna

    from hpsearch.results import ModelFile

DEFAULT_DIR = "hpsearch-artifacts"


def artifact_dir(storage_url: str, configured: str | Path | None = None) -> Path:
    """Where the model files of the database at ``storage_url`` are kept: ``configured``, else
    ``HPSEARCH_ARTIFACT_DIR``, else the default."""
    configured = configured or os.environ.get("HPSEARCH_ARTIFACT_DIR")
    if configured:
        return Path(configured).expanduser()
    if storage_url.startswith("sqlite:///") and storage_url != "sqlite:///:memory:":
        database = Path(storage_url.removeprefix("sqlite:///"))
        return database.with_name(database.name + "-artifacts")
    return Path(DEFAULT_DIR)


class Artifacts:
    """One artifact directory: the files received and the store they are kept in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / ".incoming"

    def received(self, sha256: str) -> Path:
        """Where the file of ``sha256`` is once received (it may not be there yet)."""
        return self.inbox / f"{sha256}.pt"

    def check_received(self, files: list[ModelFile]) -> None:
        """Every file in ``files`` has arrived whole (same size); else an :class:`ArtifactError`
        naming the first missing one."""
        for file in files:
            path = self.received(file.sha256)
            if not path.is_file() or path.stat().st_size != file.size:
                raise ArtifactError(
                    f"model file {file.filename} (sha256:{file.sha256}) was not uploaded before "
                    "the finish that names it"
                )

    def keep(self, file: ModelFile, target: optuna.Study | optuna.Trial, storage: Any) -> ModelFile:
        """Copy a received file into the store, recorded on ``target`` (an Optuna study or
        trial of ``storage``); the file's reference with its artifact id. The received file
        stays until :meth:`discard`: a finish applied again finds it."""
        from optuna.artifacts import FileSystemArtifactStore, upload_artifact

        source = self.received(file.sha256)
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.inbox) as staging:
            named = Path(staging) / file.filename  # the name optuna-dashboard shows
            try:
                os.link(source, named)
            except OSError:
                shutil.copyfile(source, named)
            try:
                artifact_id = upload_artifact(
                    artifact_store=FileSystemArtifactStore(self.root),
                    file_path=str(named),
                    study_or_trial=target,
                    storage=storage,
                    mimetype="application/octet-stream",
                )
            except OSError as exc:
                raise _disk_error(exc, self.root) from None
        return file.model_copy(update={"artifact_id": artifact_id})

    def checkpoint(self, study_id: int, run: int | str) -> Path:
        """Where the latest checkpoint of a running trial (``run``: its Optuna trial id) or
        final training (``run``: its stage's name) is kept: ``checkpoints/<study id>/``, beside
        the store, never listed as an artifact (it is replaced every few minutes and deleted
        when its run ends)."""
        return self.root / "checkpoints" / str(study_id) / f"{run}.pt"

    def keep_checkpoint(
        self, sha256: str, study_id: int, run: int | str, epoch: int | None = None
    ) -> Path:
        """Move the received file of ``sha256`` into place as a run's checkpoint; with its
        ``epoch``, a note beside it says which (a stage has no Optuna trial to say so)."""
        dest = self.checkpoint(study_id, run)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.received(sha256), dest)  # the same file system: atomic
            if epoch is not None:
                note = dest.with_suffix(".tmp")
                note.write_text(json.dumps({"epoch": epoch, "sha256": sha256}))
                os.replace(note, dest.with_suffix(".json"))
        except OSError as exc:
            raise _disk_error(exc, self.root) from None
        return dest

    def saved_checkpoint(self, study_id: int, run: str) -> dict[str, Any] | None:
        """``{"epoch", "sha256"}`` of a stage's checkpoint (its note), or None if it has none."""
        path = self.checkpoint(study_id, run)
        try:
            saved = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        return dict(saved) if path.is_file() else None

    def remove_checkpoints(self, study_id: int, runs: Sequence[int | str] | None = None) -> None:
        """Delete some runs' checkpoints (every one of the study's when ``runs`` is None)."""
        if runs is None:
            shutil.rmtree(self.root / "checkpoints" / str(study_id), ignore_errors=True)
            return
        for run in runs:
            self.checkpoint(study_id, run).unlink(missing_ok=True)
            self.checkpoint(study_id, run).with_suffix(".json").unlink(missing_ok=True)

    def discard(self, files: list[ModelFile]) -> None:
        """Forget received files once the result naming them is recorded."""
        for file in files:
            self.received(file.sha256).unlink(missing_ok=True)

    def path(self, artifact_id: str) -> Path:
        """The kept file of ``artifact_id``; :class:`ArtifactError` when it is gone."""
        where = self.root / artifact_id
        if "/" in artifact_id or artifact_id.startswith(".") or not where.is_file():
            raise ArtifactNotFoundError(f"artifact {artifact_id} is not in {self.root}")
        return where

    def remove(self, artifact_ids: list[str]) -> None:
        for artifact_id in artifact_ids:
            if "/" not in artifact_id and not artifact_id.startswith("."):
                (self.root / artifact_id).unlink(missing_ok=True)


def _disk_error(exc: OSError, root: Path) -> ArtifactError:
    if exc.errno == errno.ENOSPC:
        return ArtifactSpaceError(f"the artifact directory {root} is full: {exc.strerror}")
    return ArtifactWriteError(f"cannot write to the artifact directory {root}: {exc}")
