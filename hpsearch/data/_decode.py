"""Decoding a folder's images once, in parallel, into one uint8 tensor cached on disk.

Every image is decoded (Pillow: PNG, JPEG, BMP, WebP, GIF's first frame, TIFF, ...; what it does
not know, by torchvision.io), converted to the asked channels (grey and colour may be mixed),
and resized by its **shorter side to the image size, then centre-cropped** to a square. The
result is cached in ``<cache>/decoded/<key>.pt``, the key made of every image's path, size and
modification time and the image size and channels, so a second load of an unchanged folder
decodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import functional as F

from hpsearch.data._folder import FolderIndex
from hpsearch.data._paths import cache_root
from hpsearch.errors import DatasetFormatError

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when decoding changes what a cached tensor holds


@dataclass(frozen=True)
class DecodedFolder:
    """The images of a folder that could be decoded, in the index's order."""

    images: Tensor  # (N, C, S, S) uint8
    kept: np.ndarray  # (N,) positions of these images in the index's files
    skipped: tuple[str, ...]  # the files (paths below the folder) that could not be decoded


def decode_folder(index: FolderIndex, image_size: int, channels: int, fail: bool) -> DecodedFolder:
    """Every image of ``index`` as ``(N, channels, image_size, image_size)`` uint8, from the
    cache when the folder is unchanged. A file that cannot be decoded is skipped (a warning
    names how many and the first; :attr:`DecodedFolder.skipped` names them all), or with
    ``fail`` raises a :class:`DatasetFormatError` naming it."""
    file = cache_root() / "decoded" / f"{_cache_key(index, image_size, channels)}.pt"
    images, skipped = _read_cache(file) or (None, ())
    if images is None:
        images, skipped = _decode_all(index, image_size, channels, fail)
        _write_cache(file, images, skipped)
    if skipped and fail:
        raise _bad_file(index.root / skipped[0], "could not be decoded")
    if skipped:
        log.warning(
            "%d of %d images could not be decoded and were left out (first: %s); "
            "dataset.bad_files: fail stops on them instead",
            len(skipped),
            len(index.files),
            index.root / skipped[0],
        )
    left_out = set(skipped)
    kept = np.array([i for i, e in enumerate(index.files) if e.path not in left_out], np.int64)
    return DecodedFolder(images, kept, tuple(skipped))


def decode_file(path: Path, channels: int, size: int) -> Tensor:
    """One image file as ``(channels, size, size)`` uint8: decoded (an animated image's first
    frame, its EXIF orientation applied), converted to grey or colour, its shorter side resized
    to ``size`` and the centre cropped. Raises whatever its decoder raises."""
    # Pillow first: it reads more formats, and torchvision's decoders are deprecated (0.29)
    try:
        image = _decode_with_pillow(path, size, channels)
    except UnidentifiedImageError:  # a format Pillow does not know (or not an image at all)
        image = decode_image(read_file(str(path)), ImageReadMode.RGB, apply_exif_orientation=True)
        if image.ndim == 4:  # (frames, C, H, W): an animated image
            image = image[0]
        if image.dtype != torch.uint8:
            image = F.to_dtype(image, torch.uint8, scale=True)
    image = convert_channels(image, channels)
    return fit_images(image, size)


def convert_channels(images: Tensor, channels: int) -> Tensor:
    """``(..., C, H, W)`` uint8 with C 1 or 3, as ``channels`` (1: luminance; 3: grey copied)."""
    have = images.shape[-3]
    if have == channels:
        return images
    if channels == 1:  # ITU-R 601-2 luma in integers, as Pillow's "L": a grey image stays exact
        r, g, b = images.unbind(-3)
        luma = (r.int() * 299 + g.int() * 587 + b.int() * 114 + 500) // 1000
        return luma.to(torch.uint8).unsqueeze(-3)
    return images.expand(*images.shape[:-3], 3, *images.shape[-2:]).contiguous()


def fit_images(images: Tensor, size: int) -> Tensor:
    """``(..., C, H, W)`` uint8 resized so the shorter side is ``size`` (antialiased), then
    centre-cropped to ``size`` x ``size``: nothing stretched, the borders of the longer side
    dropped."""
    if images.shape[-2:] != (size, size):
        images = F.resize(images, [size], antialias=True)
        images = F.center_crop(images, [size, size])
    return images.contiguous()


def _decode_with_pillow(path: Path, size: int, channels: int) -> Tensor:
    """Pillow's own conversion to grey ("L", ITU-R 601-2 luma in integers) keeps a grey image's
    pixels exactly, where a round trip through RGB would shift some by one."""
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as opened:
        opened.seek(0)  # an animated image's first frame
        opened.draft(mode, (size, size))  # JPEG: decode at a reduced scale, never below size
        image = ImageOps.exif_transpose(opened).convert(mode)
        pixels = np.array(image, dtype=np.uint8).reshape(image.height, image.width, channels)
    return torch.from_numpy(pixels).permute(2, 0, 1)


def _try_decode(path: Path, channels: int, size: int) -> Tensor | str:
    """The decoded image, or why it could not be decoded (for the message)."""
    try:
        return decode_file(path, channels, size)
    except Exception as exc:  # untrusted bytes: any decoder failure is the file's, not ours
        return f"{type(exc).__name__}: {exc}"


def _decode_all(
    index: FolderIndex, size: int, channels: int, fail: bool
) -> tuple[Tensor, tuple[str, ...]]:
    files = index.files
    out = torch.empty((len(files), channels, size, size), dtype=torch.uint8)
    skipped: list[str] = []
    n = 0
    decode = partial(_try_decode, channels=channels, size=size)
    # decoders release the GIL: threads decode in parallel without copying images between
    # processes; map keeps the files' order (the labels are in that order)
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        with _progress(len(files), "decoding images") as advance:
            paths = [index.root / e.path for e in files]
            for entry, image in zip(files, pool.map(decode, paths), strict=True):
                advance()
                if isinstance(image, str):
                    if fail:
                        raise _bad_file(index.root / entry.path, image)
                    skipped.append(entry.path)
                    continue
                out[n] = image
                n += 1
    finally:  # on a failure, the files not yet decoded are not decoded for nothing
        pool.shutdown(cancel_futures=True)
    return out[:n].clone() if n < len(files) else out, tuple(skipped)


def _bad_file(path: Path, why: str) -> DatasetFormatError:
    return DatasetFormatError(
        path, f"not a readable image ({why}); remove it, or set dataset.bad_files: skip"
    )


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal (nothing in logs or pipes)."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


def _cache_key(index: FolderIndex, size: int, channels: int) -> str:
    files = [(e.path, e.size, e.mtime_ns) for e in index.files]
    text = json.dumps([CACHE_VERSION, index.origin, size, channels, files])
    return hashlib.sha256(text.encode()).hexdigest()


def _read_cache(file: Path) -> tuple[Tensor, tuple[str, ...]] | None:
    if not file.is_file():
        return None
    try:
        cached = torch.load(file, map_location="cpu", weights_only=True)
        images, skipped = cached["images"], tuple(cached["skipped"])
    except Exception as exc:  # a cut-off or foreign file: decode again and overwrite it
        log.warning("ignoring the unreadable image cache %s (%s)", file, exc)
        return None
    return images, skipped


def _write_cache(file: Path, images: Tensor, skipped: tuple[str, ...]) -> None:
    """Written beside its place and renamed, so a reader never sees half a file."""
    temp: str | None = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
        with os.fdopen(handle, "wb") as out:
            torch.save({"images": images, "skipped": list(skipped)}, out)
        os.replace(temp, file)
    except OSError as exc:  # a read-only cache costs the next load a decode, nothing more
        log.warning("could not cache the decoded images in %s (%s)", file, exc)
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
