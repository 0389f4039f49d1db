"""Refine continues the best trials of the round before (``recipe.refine.continue_top``): what the
refine rounds spend, in trial-epochs, with and without it, and what the study ends with.

For each seed, the same spec runs twice, start to finish (``hpsearch run``'s driver, one
process): with ``continue_top: 0`` (every refine trial trains from scratch; the best
configuration so far is retrained longer as the round's first trial) and with ``continue_top:
K`` (the K best trials of the round before go on from their weights). Prints per seed the refine
rounds' trial-epochs, their best validation objective and the final test accuracy, then the
means and ``ratio: X`` (refine trial-epochs without / with).

    python bench/refine.py                          # digits, 3 seeds, about ten minutes
    python bench/refine.py --spec shapes --seeds 2 --set dataset.train_subset=3000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from hpsearch.local import run_search
from hpsearch.spec import load_spec, spec_with


def run(spec_name: str, overrides: list[str], seed: int, top: int, folder: Path) -> dict[str, Any]:
    spec = load_spec(spec_name, tuple(overrides))
    spec = spec_with(spec, {"seed": seed, "recipe.refine.continue_top": top})
    data = run_search(spec, f"sqlite:///{folder / f'{seed}-{top}.db'}").json_data()
    refine = [s for s in data["stages"] if s["name"].startswith("refine-")]
    best = [s["result"]["best"]["value"] for s in refine if s["result"] and s["result"].get("best")]
    return {
        "epochs": sum(s["trial_epochs"] for s in refine),
        "rounds": sum(1 for s in refine if s["status"] == "completed"),
        "best": max(best, default=float("nan")),
        "test": data["best"]["test_accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="digits")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--top", type=int, default=2, help="continue_top of the second run")
    args = parser.parse_args()
    rows: dict[int, list[dict[str, Any]]] = {0: [], args.top: []}
    with tempfile.TemporaryDirectory(prefix="hpsearch-refine-") as scratch:
        for seed in range(args.seeds):
            for top in rows:
                found = run(args.spec, args.overrides, seed, top, Path(scratch))
                rows[top].append(found)
                print(
                    f"seed {seed} continue_top {top}: refine {found['epochs']:.0f} trial-epochs "
                    f"({found['rounds']} rounds), best val {found['best']:.4f}, "
                    f"test {found['test']:.4f}"
                )
    for top, runs in rows.items():
        print(
            f"continue_top {top}: refine trial-epochs "
            f"{statistics.fmean(r['epochs'] for r in runs):.1f}, best val "
            f"{statistics.fmean(r['best'] for r in runs):.4f}, test "
            f"{statistics.fmean(r['test'] for r in runs):.4f}"
        )
    without = statistics.fmean(r["epochs"] for r in rows[0])
    with_top = statistics.fmean(r["epochs"] for r in rows[args.top])
    print(f"ratio: {without / with_top:.2f} (refine trial-epochs, continue_top 0 / {args.top})")


if __name__ == "__main__":
    main()
