"""Where the user's own data lies: a local path, or an upload named by its sha256; an uploaded
folder (a tar) unpacked once beside itself; and where decoded images are cached.

Free of torch: the launch check describes a dataset without loading it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from hpsearch.errors import SpecError
from hpsearch.uploads import HEX, PREFIX, cache_dir


def resolve_path(path: str, store: Path | None = None) -> Path:
    """The file or folder ``dataset.path`` names: a local path as given (``~`` expanded), or
    for ``sha256:<hex>`` (data uploaded to a server) the file ``<hex>`` in ``store`` (default:
    ``HPSEARCH_DATASETS``, read now, or ``~/.cache/hpsearch/datasets``). Only the name is
    resolved; whether it exists is the caller's to check."""
    if not path.startswith(PREFIX):
        return Path(path).expanduser()
    digest = path.removeprefix(PREFIX)
    if not HEX.match(digest):
        raise SpecError([("dataset.path", f"{path!r} is not sha256: and 64 lowercase hex digits")])
    return (store if store is not None else cache_dir()) / digest


def cache_root() -> Path:
    """hpsearch's cache (``HPSEARCH_CACHE``, read now, or ``~/.cache/hpsearch``)."""
    return Path(os.environ.get("HPSEARCH_CACHE", "~/.cache/hpsearch")).expanduser()


def unpacked(archive: Path) -> Path:
    """The folder a tar ``archive`` holds, extracted once into ``<archive>.d/`` beside it.

    Extraction refuses what could write outside that folder (``filter="data"``: absolute paths,
    ``..``, links out, devices). It goes to a temporary folder first and is renamed into place,
    so a folder that exists is whole, and two processes unpacking at once both end up reading
    the one that won the rename (the loser's copy is removed)."""
    target = archive.with_name(archive.name + ".d")
    if target.is_dir():
        return target
    temp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", dir=archive.parent))
    try:
        with tarfile.open(archive, "r:") as tar:
            tar.extractall(temp, filter="data")
        try:
            temp.rename(target)
        except OSError:  # another process renamed its copy first
            if not target.is_dir():
                raise
    except (tarfile.TarError, OSError) as exc:
        problem = f"cannot unpack the folder's tar {archive}: {exc}"
        raise SpecError([("dataset.path", problem)]) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target
