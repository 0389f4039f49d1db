"""Datasets a user uploads to a server, so that remote workers need no shared filesystem.

A dataset travels as one file named by the sha256 of its content: an array file (.npz, .pt) as it
is, a folder of images as an uncompressed tar written the same way every time (entries sorted,
times, owners and modes fixed), so the same folder always has the same name and is uploaded once.
A spec that uses it says ``dataset.path: sha256:<hex>``. The server keeps the files in its data
directory (:class:`DatasetStore`, with a small JSON of what each one is); a worker downloads one
into its cache once, checks the hash, and reuses it for every later item and study.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from hpsearch.errors import HPSearchError

PREFIX = "sha256:"
HEX = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class DatasetError(HPSearchError):
    """An upload or a download that went wrong: cut off, or of another hash."""


class DatasetTooLarge(DatasetError):
    """Larger than the limit it is checked against."""


class DatasetNotFound(DatasetError):
    """No uploaded dataset of that hash."""


class DatasetInUse(DatasetError):
    """A dataset that studies still name cannot be deleted."""


@dataclass(frozen=True)
class StoredDataset:
    sha256: str
    kind: str  # folder (a tar of it) or arrays
    name: str  # the file or folder's name where it was pushed from
    bytes: int
    uploaded_at: str


def cache_dir() -> Path:
    """Where this machine keeps uploaded datasets it has fetched (``HPSEARCH_DATASETS``, read
    now, or ``~/.cache/hpsearch/datasets``): ``sha256:<hex>`` is the file ``<hex>`` there."""
    return Path(os.environ.get("HPSEARCH_DATASETS", "~/.cache/hpsearch/datasets")).expanduser()


def is_uploaded(path: str | None) -> bool:
    return path is not None and path.startswith(PREFIX)


def digest_of(path: str) -> str:
    """The hex digest of ``sha256:<hex>`` (a :class:`DatasetError` for anything else)."""
    hex_digest = path.removeprefix(PREFIX)
    if not path.startswith(PREFIX) or not HEX.match(hex_digest):
        raise DatasetError(f"{path!r} is not sha256: and 64 lowercase hex digits")
    return hex_digest


def pack(path: Path, into: Path) -> tuple[Path, str]:
    """``path`` as the one file that is uploaded: an array file itself, or a folder as a tar
    written to ``into`` (a directory); returns (the file, its kind)."""
    if path.is_file():
        return path, "arrays"
    if not path.is_dir():
        raise DatasetError(f"{path} is neither a file nor a folder")
    tar = into / f"{path.name or 'dataset'}.tar"
    with tarfile.open(tar, "w", format=tarfile.PAX_FORMAT) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            info = archive.gettarinfo(str(file), arcname=file.relative_to(path).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o644
            with file.open("rb") as data:
                archive.addfile(info, data)
    return tar, "folder"


def sha256_of(file: Path) -> str:
    hasher = hashlib.sha256()
    with file.open("rb") as data:
        for chunk in iter(lambda: data.read(CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


class Incoming:
    """Data arriving for ``dest``: written to a temp file beside it and hashed as it comes;
    kept (renamed into place) only once whole, at most ``limit`` bytes, and of the sha256
    ``expected``. Used as a context manager: leaving it early keeps nothing."""

    def __init__(self, dest: Path, expected: str, limit: int, what: str = "dataset") -> None:
        self.dest, self.expected, self.limit, self.what = dest, expected, limit, what
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".incoming-", dir=dest.parent)
        self.temp, self.out = Path(temp), os.fdopen(handle, "wb")
        self.hasher, self.size = hashlib.sha256(), 0

    def __enter__(self) -> Incoming:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.close()
        self.temp.unlink(missing_ok=True)  # gone already when it was kept

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise DatasetTooLarge(
                f"the {self.what} is larger than the limit of {self.limit:,} bytes"
            )
        self.hasher.update(chunk)
        self.out.write(chunk)

    def keep(self) -> int:
        """Check the hash and put the file in place; its size."""
        self.out.close()
        if self.hasher.hexdigest() != self.expected:
            raise DatasetError(
                f"the {self.what}'s sha256 is {self.hasher.hexdigest()}, not "
                f"sha256:{self.expected}: "
                "cut off or corrupted on the way"
            )
        os.replace(self.temp, self.dest)
        return self.size


def receive(chunks: Iterable[bytes], dest: Path, expected: str, limit: int) -> int:
    """Write ``chunks`` to ``dest`` through :class:`Incoming`; returns the size kept."""
    with Incoming(dest, expected, limit) as incoming:
        for chunk in chunks:
            incoming.write(chunk)
        return incoming.keep()


def file_chunks(file: Path) -> Iterator[bytes]:
    with file.open("rb") as data:
        yield from iter(lambda: data.read(CHUNK), b"")


class DatasetStore:
    """The uploaded datasets of a server, in one directory: ``<hex>`` and ``<hex>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, hex_digest: str) -> Path:
        if not HEX.match(hex_digest):
            raise DatasetNotFound(f"no dataset {hex_digest!r}: a dataset is named by its sha256")
        return self.root / hex_digest

    def has(self, hex_digest: str) -> bool:
        return self.file(hex_digest).is_file()

    def get(self, hex_digest: str) -> StoredDataset:
        meta = self.file(hex_digest).with_suffix(".json")
        if not self.has(hex_digest) or not meta.is_file():
            raise DatasetNotFound(f"no dataset sha256:{hex_digest} on this server")
        return StoredDataset(**json.loads(meta.read_text()))

    def record(self, hex_digest: str, kind: str, name: str, size: int) -> StoredDataset:
        """Write down what a kept upload is."""
        stored = StoredDataset(hex_digest, kind, name, size, datetime.now(UTC).isoformat())
        self.file(hex_digest).with_suffix(".json").write_text(json.dumps(asdict(stored)))
        return stored

    def all(self) -> list[StoredDataset]:
        if not self.root.is_dir():
            return []
        found = (p.stem for p in self.root.glob("*.json") if HEX.match(p.stem))
        return [self.get(h) for h in sorted(found) if self.has(h)]

    def delete(self, hex_digest: str) -> None:
        self.get(hex_digest)  # 404 first
        self.file(hex_digest).unlink(missing_ok=True)
        self.file(hex_digest).with_suffix(".json").unlink(missing_ok=True)
