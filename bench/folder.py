"""Your own images: a folder of image files, loaded the first time (decoded in parallel, into the
cache) and the second time (from the cache), then searched start to finish.

The folder is written here from the generated ``shapes`` (so it runs offline): each image saved
as PNG or JPEG at a random size between 24 and 96 pixels, one in ten grey, as a user's folder of
photos would be: mixed formats and sizes. The search is ``hpsearch run`` on it with the given
spec (a small CNN on 32x32 images by default). Prints the images, the first and the second load
time with ``ratio: X`` (first / second), and the search's validation and test accuracy.

    python bench/folder.py                          # 3,000 images, about two minutes on a CPU
    python bench/folder.py --images 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from hpsearch.catalog import DATASETS
from hpsearch.data import generate_shapes, load_data
from hpsearch.spec import parse_spec

SPEC = {
    "name": "folder-bench",
    "dataset": {"name": "folder", "image_size": 32, "channels": 3, "flip_invariant": True},
    "model": {"widths": [16, 32, 64]},
    "augment": {"crop_padding": 4, "flip": True},
    "train": {"epochs": 10, "batch_size": 128},
    "recipe": {
        "coarse": {"trials": 8, "epochs": 2},
        "refine": {"trials": 4, "rounds": 1},
        "final": {"epochs": 10, "early_stopping_patience": 4},
    },
}


def write_folder(root: Path, images: int, seed: int = 0) -> Path:
    """``images`` shapes as files under ``root/<class>/``, of mixed formats, sizes and colours."""
    pixels, labels = generate_shapes(images, seed)  # (N, 3, 32, 32) uint8
    names = DATASETS["shapes"].classes
    rng = np.random.default_rng(seed)
    for i, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        picture = Image.fromarray(image.transpose(1, 2, 0))
        side = int(rng.integers(24, 97))
        picture = picture.resize((side, side + int(rng.integers(0, 9))), Image.Resampling.BILINEAR)
        if rng.random() < 0.1:
            picture = picture.convert("L")
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.5:
            picture.save(folder / f"{i}.png")
        else:
            picture.save(folder / f"{i}.jpg", quality=90)
    return root


def load_times(spec: dict[str, object], cache: Path, repeat: int) -> tuple[float, list[float]]:
    """Seconds to load the folder with an empty cache, and with the cache, ``repeat`` times."""
    os.environ["HPSEARCH_CACHE"] = str(cache)
    dataset = parse_spec(spec).dataset
    started = time.perf_counter()
    load_data(dataset, seed=0)
    first = time.perf_counter() - started
    again = []
    for _ in range(repeat):
        started = time.perf_counter()
        load_data(dataset, seed=0)
        again.append(time.perf_counter() - started)
    return first, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3, help="loads from the cache to time")
    parser.add_argument("--no-search", action="store_true", help="only time the loads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpsearch-folder-bench-") as scratch:
        where = Path(scratch)
        folder = write_folder(where / "images", args.images)
        spec = json.loads(json.dumps(SPEC))
        spec["dataset"]["path"] = str(folder)
        first, again = load_times(spec, where / "cache", args.repeat)
        second = statistics.median(again)
        print(f"images: {args.images} files (PNG and JPEG, 24 to 96 px, 10% grey)")
        print(f"first load: {first:.2f} s (decoded in parallel, cached)")
        spread = f"{min(again):.2f} to {max(again):.2f}"
        print(f"second load: {second:.2f} s (median of {len(again)}: {spread})")
        print(f"ratio: {first / second:.1f}")
        if args.no_search:
            return
        spec_file = where / "spec.json"
        spec_file.write_text(json.dumps(spec))
        command = [sys.executable, "-m", "hpsearch", "run", "--spec", str(spec_file), "--json"]
        command += ["--storage", f"sqlite:///{where / 'bench.db'}"]
        env = {"HPSEARCH_CACHE": str(where / "cache")}
        started = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, env=os.environ | env
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        best = result["best"]
        print(
            f"search: {result['state']} in {time.perf_counter() - started:.0f} s; validation "
            f"accuracy {best['val_accuracy']:.4f}, test accuracy {best['test_accuracy']:.4f}"
        )


if __name__ == "__main__":
    main()
