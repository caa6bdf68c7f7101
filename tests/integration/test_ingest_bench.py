"""The ingest benchmark runs end to end (``--quick``: a few small images, a tiny model).

A smoke test only: it checks that the three variants run, index what they should and that the
output ends with the ratios line. Speed is the benchmark's business, never a test's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bench_runs import run_quick


@pytest.mark.slow
def test_quick_benchmark_runs_and_ends_with_the_ratios(tmp_path: Path) -> None:
    done = run_quick("bench.ingest", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"ratios: vs_seed=\d+\.\d\d vs_bound=\d+\.\d\d", lines[-1]), lines[-1]
    assert re.fullmatch(r"model-only: vs_model_bound=\d+\.\d\d", lines[-2]), lines[-2]
    bound = next(line for line in lines if line.startswith("bound: model "))
    assert re.match(r"bound: model \d+\.\d core-ms/image .* decode\+prepare \d+\.\d core-ms/image", bound)
    assert any(line.strip().startswith("pipeline bound ") for line in lines)
    assert "documents in the sink: {'bench-seed': 12, 'bench-provision': 12}" in done.stdout
    for variant in ("seed", "provision", "bound"):
        assert any(line.startswith(variant) for line in lines), variant
