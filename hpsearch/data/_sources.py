"""What a dataset is, before anything is loaded: the catalog's entry for a built-in, what the
files say for the user's own data. Free of torch (the launch check runs on the server)."""

from __future__ import annotations

from pathlib import Path

from hpsearch.catalog import DATASETS, DatasetInfo
from hpsearch.data._arrays import describe_arrays
from hpsearch.data._folder import describe_folder
from hpsearch.data._paths import not_regular, resolve_path
from hpsearch.errors import SpecError
from hpsearch.spec import DatasetSpec


def describe_dataset(spec: DatasetSpec, store: Path | None = None) -> DatasetInfo:
    """The dataset ``spec`` names, as the model and the recipe see it: channels, image size,
    class names, number of images, whether it has its own test split, flip invariance.

    For a built-in, its catalog entry. For ``folder`` and ``arrays`` data, what its files say
    without decoding any image (file names for a folder; headers and labels for an array
    file). ``store`` is where uploads (``sha256:<hex>`` paths) are kept (see
    :func:`resolve_path`). Data that cannot be used raises a :class:`SpecError` naming the field
    to fix (``dataset.path``, ``dataset.image_size``) and what is wrong."""
    if spec.name in DATASETS:
        return DATASETS[spec.name]
    source = user_source(spec, store)
    if spec.name == "folder":
        return describe_folder(spec, source)
    return describe_arrays(spec, source)


def user_source(spec: DatasetSpec, store: Path | None = None) -> Path:
    """The existing file or folder of the user's data ``spec`` names."""
    assert spec.path is not None  # the spec requires it of the user's data
    source = resolve_path(spec.path, store)
    if not source.exists():
        where = "" if str(source) == spec.path else f" (looked for {source})"
        raise SpecError([("dataset.path", f"{spec.path} does not exist{where}")])
    if not_regular(source):
        raise SpecError([("dataset.path", f"{spec.path} is not a regular file or a folder")])
    if spec.name == "arrays" and source.is_dir():
        raise SpecError([("dataset.path", f"{spec.path} is a folder; arrays data is one file")])
    return source
