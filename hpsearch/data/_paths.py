"""Where the user's own data lies: a local path, or an upload named by its sha256; an uploaded
folder (a tar) unpacked once beside itself; and where decoded images are cached.

Free of torch: the launch check describes a dataset without loading it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
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


def outside_roots(path: str, roots: Sequence[Path]) -> str | None:
    """Why a server must not read ``path`` (None: it may): a server reads data uploaded to it
    (``sha256:<hex>``) and files under the directories its operator lists
    (``HPSEARCH_DATA_ROOTS``), nothing else. The answer is the same whether ``path`` exists or
    not, and names no server path the client did not send (no oracle of the server's files)."""
    if path.startswith(PREFIX):
        return None
    where = (
        "this server lists none" if not roots else "it lies under none of those this server lists"
    )
    refused = (
        f"{path}: a server reads only data uploaded to it (sha256:<hex>: hpsearch launch uploads "
        f"a local file or folder, hpsearch data push one) or files under the directories "
        f"HPSEARCH_DATA_ROOTS lists, and {where}"
    )
    candidate = Path(path)
    if not candidate.is_absolute():
        return refused
    real = Path(os.path.realpath(candidate))  # symlinks followed: none leads out of a root
    if not any(real == root or root in real.parents for root in roots):
        return refused
    return None


def not_regular(path: Path) -> bool:
    """Whether ``path`` exists but is neither a regular file nor a folder (a device such as
    /dev/zero, a FIFO, a socket): never read as data."""
    return path.exists() and not (path.is_file() or path.is_dir())


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
