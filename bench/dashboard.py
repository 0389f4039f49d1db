"""The dashboard with a large study: a finished search plus 10,000 coarse trials written straight
into storage, served by ``hpsearch serve``.

In one run, on one server, a first (cold) load then 20 more of each of:

- ours: the study's page (``/studies/{id}``, the HTML with its first data), and each call its
  script makes when it opens (the summary, the first table page, every trial as a point, the
  three Optuna charts);
- baseline: optuna-dashboard's own study call for the same 10,000-trial Optuna study
  (``/optuna/api/studies/{id}``, what its page loads before it can draw anything).

Printed: the first load, p50 and p95 of the 20, and ``ratio`` (the baseline's p95 over our
page's p95).

    python bench/dashboard.py                    # SQLite
    python bench/dashboard.py --backend postgresql --trials 10000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx
import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.big_study writes the study (shared with the browser test)

from service import TOKENS, fresh_database, percentile, server  # noqa: E402

from hpsearch.storage import Store  # noqa: E402
from tests.big_study import write_big_study  # noqa: E402

HEADERS = {"Authorization": f"Bearer {TOKENS['HPSEARCH_ADMIN_TOKEN']}"}


def timed(client: httpx.Client, path: str, loads: int) -> tuple[float, list[float]]:
    """The first (cold) load, then ``loads`` more."""
    seconds = []
    for _ in range(loads + 1):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        seconds.append(time.perf_counter() - started)
    return seconds[0], seconds[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with fresh_database(args.backend) as url:
        started = time.perf_counter()
        study_id = write_big_study(url, "big", args.trials)
        print(f"{args.backend}: wrote a study of {args.trials} extra trials "
              f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
        coarse = optuna.load_study(study_name="big:coarse", storage=Store(url).url)
        with server(url, 1) as base, httpx.Client(base_url=base, headers=HEADERS, timeout=120) as c:
            ours = {
                "page": f"/studies/{study_id}",
                "summary": f"/api/studies/{study_id}",
                "table": f"/api/studies/{study_id}/trials?state=complete&sort=value&limit=20",
                "points": f"/api/studies/{study_id}/points",
                **{kind: f"/api/studies/{study_id}/charts/{kind}"
                   for kind in ("history", "importance", "intermediate")},
            }  # fmt: skip
            baseline = f"/optuna/api/studies/{coarse._study_id}"
            results = {name: timed(c, path, args.loads) for name, path in ours.items()}
            results["optuna-dashboard"] = timed(c, baseline, args.loads)
    print(f"{len(coarse.trials)} trials in the coarse stage; {args.loads} loads each (ms):")
    for name, (first, seconds) in results.items():
        p50, p95 = 1000 * statistics.median(seconds), 1000 * percentile(seconds, 0.95)
        print(f"  {name:>18}: first {1000 * first:7.1f}  p50 {p50:7.1f}  p95 {p95:7.1f}")
    ratio = percentile(results["optuna-dashboard"][1], 0.95) / percentile(results["page"][1], 0.95)
    print(f"ratio: {ratio:.1f}")


if __name__ == "__main__":
    main()
