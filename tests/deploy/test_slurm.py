"""deploy/slurm/worker.sbatch runs one `hpsearch worker --burst` per array task."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SBATCH = Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "worker.sbatch"


def run_task(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script as a Slurm task runs it, with a stand-in `hpsearch` that prints its args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "hpsearch"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    base = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    return subprocess.run(
        ["bash", str(SBATCH)], env=base | env, capture_output=True, text=True, timeout=60
    )


def test_each_array_task_runs_a_burst_worker_on_its_gpu(tmp_path: Path) -> None:
    done = run_task(
        tmp_path,
        {
            "HPSEARCH_SERVER": "http://api:8000",
            "HPSEARCH_WORKER_TOKEN": "secret",
            "SLURM_ARRAY_JOB_ID": "77",
            "SLURM_ARRAY_TASK_ID": "3",
        },
    )
    assert done.returncode == 0, done.stderr
    args = done.stdout.split()
    assert args[0] == "worker"
    assert args[args.index("--server") + 1] == "http://api:8000"
    assert args[args.index("--devices") + 1] == "all"  # the one GPU Slurm made visible
    assert "--burst" in args  # the allocation ends with the work
    assert args[args.index("--id") + 1] == "slurm-77-3"
    assert args[args.index("--spool") + 1] == f"{tmp_path}/hpsearch-spool"


def test_a_task_without_the_server_says_what_to_export(tmp_path: Path) -> None:
    done = run_task(tmp_path, {"HPSEARCH_WORKER_TOKEN": "secret"})
    assert done.returncode != 0
    assert "export HPSEARCH_SERVER" in done.stderr
    assert done.stdout == ""  # no worker started


def test_the_script_asks_slurm_for_one_gpu_per_task() -> None:
    directives = [line for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --gres=gpu:1" in directives
    assert any(line.startswith("#SBATCH --array=") for line in directives)
