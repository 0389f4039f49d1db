"""Classifying image files with a trained model (``hpsearch predict``).

A path is an image file or a folder of them (searched recursively). In a folder laid out as
torchvision's ImageFolder (``DIR/<class>/<image>``, or under ``train/``, ``val/``, ``test/``), an
image whose class folder is one of the model's classes is labelled by it, and the labelled images
are scored: accuracy and macro-F1 (``hpsearch.metrics``), as the study scored its test split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from hpsearch.data import SPLIT_FOLDERS, list_folder
from hpsearch.errors import HPSearchError
from hpsearch.metrics import evaluate
from hpsearch.results import SplitMetrics
from hpsearch.trained._model import TrainedModel

CHUNK = 512  # images decoded and classified at a time


@dataclass
class Predictions:
    paths: list[Path] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)  # from the folder layout
    metrics: SplitMetrics | None = None  # of the labelled images

    def as_json(self, names: list[str]) -> dict[str, object]:
        labelled = [label for label in self.labels if label is not None]
        out: dict[str, object] = {
            "images": len(self.paths),
            "labelled": len(labelled),
            "predictions": [
                {"path": str(p), "class": names[c], "probability": round(q, 6)}
                | ({"label": names[label]} if label is not None else {})
                for p, c, q, label in zip(
                    self.paths, self.classes, self.confidence, self.labels, strict=True
                )
            ],
        }
        if self.metrics is not None:
            out |= {"accuracy": self.metrics.accuracy, "macro_f1": self.metrics.macro_f1}
        return out


def images_of(paths: list[Path], classes: list[str]) -> list[tuple[Path, int | None]]:
    """Every image file the paths name, each with its label where the folder layout gives one
    of ``classes``."""
    found: list[tuple[Path, int | None]] = []
    index = {name: i for i, name in enumerate(classes)}
    for path in paths:
        if path.is_file():
            found.append((path, None))
            continue
        if not path.is_dir():
            raise HPSearchError(f"{path}: no such file or folder")
        for entry in sorted(list_folder(path), key=lambda e: e.path):
            relative = PurePosixPath(entry.path)
            parts = relative.parts
            if len(parts) >= 3 and parts[0] in SPLIT_FOLDERS:
                parts = parts[1:]
            label = index.get(parts[0]) if len(parts) >= 2 else None
            found.append((path / relative, label))
    if not found:
        raise HPSearchError(f"no image files in {', '.join(str(p) for p in paths)}")
    return found


def predict_files(model: TrainedModel, paths: list[Path]) -> Predictions:
    """Classify the images ``paths`` name; score the labelled ones."""
    files = images_of(paths, model.classes)
    out = Predictions()
    probs_all = []
    for start in range(0, len(files), CHUNK):
        chunk = files[start : start + CHUNK]
        images = model.read_images(path for path, _ in chunk)
        probs = model.predict_proba(images).cpu()
        probs_all.append(probs)
        confidence, classes = probs.max(1)
        out.paths += [path for path, _ in chunk]
        out.labels += [label for _, label in chunk]
        out.classes += classes.tolist()
        out.confidence += confidence.tolist()
    labelled = [i for i, label in enumerate(out.labels) if label is not None]
    if labelled:
        scored = torch.cat(probs_all)[labelled].numpy()
        labels = np.array([out.labels[i] for i in labelled], dtype=np.int64)
        out.metrics = evaluate(scored, labels, model.classes)
    return out
