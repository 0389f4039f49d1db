"""A folder of images in torchvision's ImageFolder layout, indexed without decoding anything.

``DIR/<class>/<image>`` (images may sit deeper below their class folder), or the same split
already into ``DIR/train``, ``DIR/val`` (or ``valid``, ``validation``) and ``DIR/test``, whose
classes are those of ``train/``. A class is a subfolder holding at least one image; an image is
a file with one of :data:`IMAGE_SUFFIXES` (any case). Hidden files and folders (``.name``,
``__MACOSX``) are ignored. ``DIR`` may also be an uncompressed tar of the folder (an upload):
it is indexed from its members, and unpacked once to be read.

Free of torch, so the launch check can describe a folder in a moment.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hpsearch.catalog import DatasetInfo
from hpsearch.data._paths import unpacked
from hpsearch.errors import SpecError
from hpsearch.spec import DatasetSpec

IMAGE_SUFFIXES = frozenset(
    {
        *(".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".webp"),
        *(".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".avif", ".heic"),
    }
)
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
DEFAULT_CHANNELS = 3


@dataclass(frozen=True)
class Entry:
    """One image file: its path below the folder (POSIX), size and modification time."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FolderIndex:
    """The images of a folder, sorted by path, each with its class and split ("" where the
    folder is not split: the split is drawn, seeded, like a built-in's)."""

    root: Path  # where the files are read from (a tar's unpacked copy)
    origin: str  # "" for a folder; for a tar, the archive (its entries all date from 1970)
    classes: tuple[str, ...]
    files: tuple[Entry, ...]
    labels: tuple[int, ...]
    splits: tuple[str, ...]  # "", "train", "val" or "test", one per file


def index_folder(source: Path, unpack: bool = True) -> FolderIndex:
    """The images of the folder (or tar of a folder) ``source``, with their classes and
    splits. A tar is unpacked first (once) unless ``unpack`` is False, when its members are
    read instead (the index's ``root`` then names files that do not exist yet)."""
    if source.is_dir():
        root, origin, entries = source, "", list_folder(source)
    elif tarfile.is_tarfile(source):
        st = source.stat()
        origin = f"{source}:{st.st_size}:{st.st_mtime_ns}"
        if unpack:
            root = unpacked(source)
            entries = list_folder(root)
        else:
            root, entries = source.with_name(source.name + ".d"), _list_tar(source)
        prefix, entries = _unwrap(entries)
        root = root / prefix if prefix else root
    else:
        raise SpecError([("dataset.path", f"{source} is neither a folder nor a tar of one")])
    classes, labels, splits, files = _layout(source, entries)
    return FolderIndex(root, origin, classes, files, labels, splits)


def describe_folder(spec: DatasetSpec, source: Path) -> DatasetInfo:
    """What a folder holds, from its file names alone (no image is decoded)."""
    return folder_info(spec, index_folder(source, unpack=False))


def folder_info(spec: DatasetSpec, index: FolderIndex) -> DatasetInfo:
    """The dataset ``spec`` describes, with the classes and images of its folder's ``index``."""
    assert spec.image_size is not None  # the spec requires it of a folder
    return DatasetInfo(
        name=spec.name,
        channels=spec.channels or DEFAULT_CHANNELS,
        image_size=spec.image_size,
        classes=index.classes,
        flip_invariant=spec.flip_invariant,
        official_test_split="test" in index.splits,
        images=len(index.files),
        path=spec.path,
    )


def _is_image(parts: tuple[str, ...]) -> bool:
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return not hidden and PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES


def list_folder(root: Path) -> list[Entry]:
    entries = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__MACOSX"]
        for name in names:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if _is_image(PurePosixPath(relative).parts):
                st = path.stat()
                entries.append(Entry(relative, st.st_size, st.st_mtime_ns))
    return entries


def _list_tar(archive: Path) -> list[Entry]:
    with tarfile.open(archive, "r:") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
    entries = []
    for member in members:
        parts = PurePosixPath(member.name).parts  # "./a/b.png" -> ("a", "b.png")
        if parts and _is_image(parts):
            entries.append(Entry("/".join(parts), member.size, int(member.mtime) * 10**9))
    return entries


def _unwrap(entries: list[Entry]) -> tuple[str, list[Entry]]:
    """A tar of ``DIR`` made with ``DIR/`` in every name: ("DIR", the names below it). A
    folder that is one class and nothing else is refused anyway, so this is unambiguous."""
    firsts = {PurePosixPath(e.path).parts[0] for e in entries}
    if len(firsts) != 1 or any(e.path.count("/") < 2 for e in entries):
        return "", entries
    prefix = firsts.pop()
    if prefix in SPLIT_FOLDERS:
        return "", entries
    cut = len(prefix) + 1
    return prefix, [Entry(e.path[cut:], e.size, e.mtime_ns) for e in entries]


def _layout(
    source: Path, entries: list[Entry]
) -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...], tuple[Entry, ...]]:
    """(classes, each file's label, each file's split, the files), sorted by path."""
    entries = sorted(entries, key=lambda e: e.path)
    placed: list[tuple[Entry, str, str]] = []  # (file, class, split)
    is_split = any(e.path.startswith("train/") and e.path.count("/") >= 2 for e in entries)
    for e in entries:
        parts = e.path.split("/")
        if is_split and parts[0] in SPLIT_FOLDERS and len(parts) >= 3:
            placed.append((e, parts[1], SPLIT_FOLDERS[parts[0]]))
        elif not is_split and len(parts) >= 2:
            placed.append((e, parts[0], ""))
    names = sorted({c for _, c, split in placed if split in ("", "train")})
    where = f"{source}/train" if is_split else str(source)
    if not names:
        found = "no images" if not entries else "no images in class subfolders"
        problem = f"{where} has {found} (DIR/<class>/<image>; e.g. .png, .jpg)"
        raise SpecError([("dataset.path", problem)])
    if len(names) < 2:
        problem = f"{where} has one class ({names[0]}); a classifier needs at least 2"
        raise SpecError([("dataset.path", problem)])
    label = {name: i for i, name in enumerate(names)}
    unknown = sorted({f"{s}/{c}" for _, c, s in placed if c not in label})
    if unknown:
        problem = f"{source} has {', '.join(unknown)}, not a class of train/ ({', '.join(names)})"
        raise SpecError([("dataset.path", problem)])
    files = tuple(e for e, _, _ in placed)
    labels = tuple(label[c] for _, c, _ in placed)
    splits = tuple(s for _, _, s in placed)
    return tuple(names), labels, splits, files
