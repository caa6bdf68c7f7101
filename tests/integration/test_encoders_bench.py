"""The encoder benchmark runs end to end (``--quick``: a few small images, tiny models).

A smoke test only: every variant is converted and gated (on the "full-size" stand-in and on the
tiny trained pair), those accepted ingest every photo, and the output ends with the ratios line.
Speed is the benchmark's business, never a test's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bench_runs import run_quick


@pytest.mark.slow
def test_quick_encoder_benchmark_runs_and_ends_with_the_ratios(tmp_path: Path) -> None:
    done = run_quick("bench.encoders", tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"ratios: onnx_vs_torch=\d+\.\d\d best_vs_torch=\d+\.\d\d", lines[-1]), lines[-1]
    variants = ("torch-fp32", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8")
    rows = {line.split()[0]: line for line in lines if line[:1].isalpha() and line.split()[0] in variants}
    assert set(rows) == set(variants), lines
    # fp32 conversions are accepted and indexed every photo; int8 ones either did too or were refused.
    counts = next(line for line in lines if line.startswith("documents in the sink: "))
    for variant in ("torch-fp32", "onnx-fp32", "openvino-fp32"):
        assert f"'{variant}': 12" in counts, counts
    for variant in ("onnx-int8", "openvino-int8"):
        assert f"'{variant}': 12" in counts or "REFUSED" in rows[variant], (counts, rows[variant])
    assert any(line.startswith("decode core-ms/image") and "draft " in line for line in lines)
    assert "text->image top-1" in done.stdout and "gate on the full-size" in done.stdout
    assert (tmp_path / "provision-cache" / "encoders").is_dir()
