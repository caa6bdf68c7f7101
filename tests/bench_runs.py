"""Running a benchmark's ``--quick`` smoke run from a test: the same command a person runs, in a child
process, with the benchmark cache in the test's own folder and the hub offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_quick(
    module: str, cache: Path, *, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> --quick`` from the repository root, its inputs cached under ``cache``;
    ``env`` adds variables. Returns the finished process (stdout and stderr as text)."""
    return subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO),
            "PROVISION_BENCH_CACHE": str(cache),
            **env,
        },
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
