"""``bench/gpu.sh``, the GPU checks in one run: where there is no GPU it stops at once, saying so
in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_without_a_gpu_the_gpu_script_stops_with_one_error_line(tmp_path: Path) -> None:
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}  # no GPU, even here
    run = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "error: bench/gpu.sh needs a CUDA GPU: torch.cuda.is_available() is False on this machine"
    ]
