"""The serve benchmark runs end to end (``--quick``: a few requests, two seconds of load).

A smoke test only: the sandbox and ``provision serve`` start, every request succeeds and the
output ends with the figures line. Speed is the benchmark's business, never a test's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bench_runs import run_quick


@pytest.mark.slow
def test_quick_serve_benchmark_runs_and_ends_with_the_figures(tmp_path: Path) -> None:
    done = run_quick("bench.serve", tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    number = r"\d+\.\d"
    assert re.fullmatch(
        rf"serve: text p50={number} p95={number} ms image p50={number} p95={number} ms "
        rf"load={number}req/s errors=0 vs_library text=\d+\.\d\dx image=\d+\.\d\dx",
        lines[-1],
    ), lines[-1]
    assert "floors: errors only (--quick)" in done.stdout
    assert re.search(r"8 clients for \d+\.\d s: \d+ requests, .* 0 errors", done.stdout)
    for kind in ("text", "image", "similar"):
        assert re.search(rf"load +{kind} +x[1-9]", done.stdout), kind
