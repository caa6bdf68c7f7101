"""The Ray benchmark runs end to end (``--quick``: a few small images, a tiny model).

A smoke test only: the four variants run, each fills its index, and the output ends with the
projection, the floors and the ratios line. Speed is the benchmark's business, never a test's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bench_runs import run_quick


@pytest.mark.slow
def test_quick_ray_benchmark_runs_and_ends_with_the_ratios(tmp_path: Path) -> None:
    done = run_quick("bench.ray", tmp_path, timeout=900, RAY_AUTH_MODE="disabled")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"ratios: ray_vs_local=\d+\.\d\d load_vs_embed=\d+\.\d\d", lines[-1]), lines[-1]
    assert "documents in the sink: {'bench-local': 12, 'bench-ray': 12, 'bench-loaded': 12}" in done.stdout
    for variant in (
        "local engine, steady",
        "local engine, command",
        "ray engine, steady",
        "ray engine, command",
        "export on ray",
        "load from Parquet",
    ):
        assert any(line.startswith(variant) for line in lines), variant
    assert re.search(r"10 M images in 24 h: \d+ actors at \d+\.\d\d images/s each", done.stdout)
    assert any(line.startswith("floors: ray_vs_local >= 0.8 ") for line in lines)
