"""Converted image encoders (ONNX Runtime, OpenVINO; fp32 and int8): conversion cached by fingerprint,
the quality gate (accepting, refusing a deliberately broken conversion, caching its verdict), and
search quality on the tiny trained CLIP pair.

Real exports, real quantisers, real runtimes; no mocks. Models: the tiny trained pair in
``models/tiny-clip`` (quality) and a tiny random CLIP written by ``bench.ingest.models``.

Quality metric (``bench.encoders.quality``, as in test_tiny_clip_models.py): every caption of every
class in a language is a query; the gallery is the held-out images (10 per class of 42, a random
stream training never used) written as JPEG and decoded as ingest decodes them; a query is right when
its nearest image shows its class. An encoder the gate accepts must stay within 0.02 of torch fp32
for each language.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import provisioning
from bench.encoders import quality
from bench.ingest.models import save_tiny_clip
from provisioning.embedding import conversion
from provisioning.embedding.calibration import CalibrationSet
from provisioning.embedding.conversion import EncoderCache
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.embedding.loading import declared_fingerprint, load_encoder
from provisioning.embedding.quality_gate import MIN_MEAN_COSINE, QualityGateError
from provisioning.image_ingest.decode import open_image
from provisioning.stackfile.schema import EncoderSpec
from tests.conftest import REPO, Target
from tests.integration.stacks import absolute_stack

pytestmark = pytest.mark.slow

TINY = quality.TINY
SAMPLES = quality.QUICKSTART_SAMPLES
QUICKSTART_SAMPLES = 84
VARIANTS = [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8")]


def _spec(path: Path, runtime: str = "torch", precision: str = "fp32", **extra: Any) -> EncoderSpec:
    return EncoderSpec.model_validate(
        {"source": {"path": str(path)}, "runtime": runtime, "precision": precision, "batch_size": 16, **extra}
    )


def _samples() -> CalibrationSet:
    """The quickstart's sample images: what the gate sees when the quickstart ingests with this encoder."""
    return CalibrationSet(tuple(sorted(SAMPLES.glob("*.jpg"))), "images of the quickstart samples", 64)


def _delta(before: Counter[str]) -> dict[str, int]:
    return {
        key: conversion.counters[key] - before[key]
        for key in ("conversions", "cache_hits", "gate_runs", "gate_cache_hits")
    }


@pytest.fixture(scope="module")
def random_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("model") / "tiny-clip")


# -- conversion cache ---------------------------------------------------------------------------------


def test_conversion_and_verdict_are_cached_by_fingerprint(random_clip: Path, tmp_path: Path) -> None:
    cache = EncoderCache(tmp_path / "cache")
    spec = _spec(random_clip, "onnx")
    before = Counter(conversion.counters)
    first = load_encoder("clip", spec, Path("/"), cache=cache)
    assert _delta(before) == {"conversions": 1, "cache_hits": 0, "gate_runs": 1, "gate_cache_hits": 0}
    assert first.runtime == "onnx" and first.precision == "fp32" and first.model is None
    assert first.verdict is not None and first.verdict.passed and first.verdict.images == 64
    assert first.verdict.calibration == "64 generated images"

    before = Counter(conversion.counters)
    second = load_encoder("clip", spec, Path("/"), cache=cache)
    assert _delta(before) == {"conversions": 0, "cache_hits": 1, "gate_runs": 0, "gate_cache_hits": 1}
    assert second.fingerprint == first.fingerprint == declared_fingerprint(spec, Path("/"))
    assert second.verdict == first.verdict

    # The converted model computes what torch computes.
    torch_encoder = load_encoder("clip", _spec(random_clip), Path("/"))
    images = [open_image(path).image for path in sorted(SAMPLES.glob("*.jpg"))[:5]]
    assert np.abs(second.encode_images(images) - torch_encoder.encode_images(images)).max() < 1e-4
    assert torch_encoder.fingerprint is not None and first.fingerprint is not None
    assert torch_encoder.fingerprint.source == first.fingerprint.source
    assert torch_encoder.fingerprint.vectors_id != first.fingerprint.vectors_id

    # Other source content is another fingerprint: converted afresh, never the stale artifact.
    changed = tmp_path / "changed"
    shutil.copytree(random_clip, changed)
    (changed / "config_note.txt").write_text("another revision", encoding="utf-8")
    before = Counter(conversion.counters)
    third = load_encoder("clip", _spec(changed, "onnx"), Path("/"), cache=cache)
    assert _delta(before)["conversions"] == 1
    assert third.fingerprint is not None and third.fingerprint.digest != first.fingerprint.digest


def _break(model_file: Path) -> None:
    """Add noise of half their spread to every weight matrix of an exported ONNX model."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_file))
    rng = np.random.default_rng(0)
    for initializer in model.graph.initializer:
        weights = numpy_helper.to_array(initializer)
        if weights.dtype == np.float32 and weights.ndim >= 2:
            noisy = weights + rng.normal(0, 0.5 * float(weights.std()) + 1e-3, weights.shape).astype(
                np.float32
            )
            initializer.CopyFrom(numpy_helper.from_array(noisy, initializer.name))
    onnx.save(model, str(model_file))


def test_the_gate_refuses_a_broken_conversion_with_its_figures(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    cache = EncoderCache(tmp_path / "cache")
    spec = _spec(TINY / "image", "onnx")
    fingerprint = declared_fingerprint(spec, Path("/"))
    assert fingerprint is not None
    artifact = cache.convert(
        "clip-image", fingerprint, SentenceTransformer(str(TINY / "image"), device="cpu")
    )
    _break(artifact.model_file)

    before = Counter(conversion.counters)
    with pytest.raises(QualityGateError) as caught:
        load_encoder("clip-image", spec, Path("/"), cache=cache, calibration=_samples())
    assert _delta(before) == {"conversions": 0, "cache_hits": 1, "gate_runs": 1, "gate_cache_hits": 0}
    verdict = caught.value.verdict
    assert not verdict.passed and verdict.mean_cosine < MIN_MEAN_COSINE
    assert verdict.calibration == "64 images of the quickstart samples"
    message = str(caught.value)
    assert f"mean cosine {verdict.mean_cosine:.4f} (needs >= 0.99" in message
    assert "top-10 neighbour overlap" in message and "(needs >= 0.95)" in message
    assert "encoders.clip-image" in message and "runtime: openvino" in message and "runtime: torch" in message

    # The refusal is cached with the artifact: refused again at once, with the same figures.
    assert cache.verdict(fingerprint) == verdict
    before = Counter(conversion.counters)
    with pytest.raises(QualityGateError) as again:
        load_encoder("clip-image", spec, Path("/"), cache=cache, calibration=_samples())
    assert _delta(before) == {"conversions": 0, "cache_hits": 1, "gate_runs": 0, "gate_cache_hits": 1}
    assert again.value.verdict == verdict

    # A sound conversion of the same model passes.
    cache.convert("clip-image", fingerprint, SentenceTransformer(str(TINY / "image"), device="cpu"))
    cache.forget_verdict(fingerprint)
    sound = load_encoder("clip-image", spec, Path("/"), cache=cache, calibration=_samples())
    assert sound.verdict is not None and sound.verdict.passed and sound.verdict.mean_cosine > 0.9999


# -- quality on the tiny trained pair -------------------------------------------------------------------


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> quality.HeldOut:
    return quality.held_out(tmp_path_factory.mktemp("held-out"))


@pytest.fixture(scope="module")
def queries() -> quality.Queries:
    return quality.caption_queries()


@pytest.fixture(scope="module")
def torch_top1(held_out: quality.HeldOut, queries: quality.Queries) -> dict[str, float]:
    encoder = load_encoder("clip-image", _spec(TINY / "image"), Path("/"))
    figures = quality.text_to_image_top1(encoder, held_out, queries)
    assert all(value >= 0.9 for value in figures.values()), figures
    return figures


@pytest.mark.parametrize(("runtime", "precision"), VARIANTS)
def test_accepted_encoders_keep_text_to_image_top1_within_002_per_language(
    runtime: str,
    precision: str,
    held_out: quality.HeldOut,
    queries: quality.Queries,
    torch_top1: dict[str, float],
) -> None:
    """fp32 conversions must pass the gate; an int8 one may be refused, but only by the gate, with its
    figures, and whatever the gate accepts keeps search quality."""
    spec = _spec(TINY / "image", runtime, precision)
    try:
        encoder = load_encoder("clip-image", spec, Path("/"), calibration=_samples())
    except QualityGateError as refused:
        assert precision == "int8", f"the gate refused {runtime} fp32: {refused}"
        assert not refused.verdict.passed and "needs >= 0.99" in str(refused)
        print(f"{runtime} {precision}: refused by the gate: {refused.verdict.figures()}")
        return
    assert encoder.verdict is not None and encoder.verdict.passed
    figures = quality.text_to_image_top1(encoder, held_out, queries)
    print(f"{runtime} {precision}: top-1 {figures} vs torch fp32 {torch_top1}; {encoder.verdict.figures()}")
    for language, value in figures.items():
        assert abs(value - torch_top1[language]) <= quality.TOP1_TOLERANCE, (
            language,
            value,
            torch_top1[language],
        )


# -- the quickstart with each runtime -------------------------------------------------------------------


@pytest.mark.parametrize(("runtime", "precision"), [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32")])
def test_the_quickstart_converges_with_each_runtime(
    runtime: str, precision: str, es_target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``provisioning.converge`` on the quickstart stack with its image encoder converted: the gate
    passes on the quickstart's own samples, every image is indexed and every smoke test passes (the
    example-image query embeds its image with the same converted encoder)."""
    import yaml

    monkeypatch.setenv("PROVISION_CACHE_DIR", str(tmp_path / "cache"))  # converted and gated afresh
    path = absolute_stack(tmp_path)
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    body["encoders"]["clip-image"].update(runtime=runtime, precision=precision)
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
    stack = provisioning.load_stack(path)
    cluster = provisioning.connect(stack, url=es_target.url)
    try:
        report = provisioning.converge(stack, cluster)
        assert report.ok, report.to_json()
        assert report.ingest is not None and report.ingest.jobs[0].indexed == QUICKSTART_SAMPLES
        (load,) = report.ingest.encoders
        assert (load.runtime, load.precision) == (runtime, precision)
        assert load.gate is not None and load.gate["passed"] is True
        assert load.gate["calibration"] == "64 images of ingest job 'samples'"
        assert report.verify is not None
        assert [(r.name, r.passed) for r in report.verify.results] == [
            (n, True) for n in stack.spec.smoke_tests
        ]
        status = provisioning.status(stack, cluster)
        details = next(r.details for r in status.resources if r.kind == "index")
        assert f"clip-image: {runtime} {precision} of sha256:" in str(details["vectors.image_embedding"])
    finally:
        destroyed = provisioning.destroy(stack, cluster, provisioning.DestroyOptions(include_data=True))
        assert destroyed.ok, destroyed.to_json()


def test_provision_ingest_converts_quietly_and_prints_one_json_document(
    random_clip: Path, es: Any, es_target: Target, tmp_path: Path
) -> None:
    """A first load converts, quantises and gates inside the command; stdout is still one JSON document
    and the exporters' chatter goes nowhere (it is kept for error messages only)."""
    import json
    import os
    import subprocess
    import sys
    import uuid

    import yaml

    from bench.ingest.corpus import small_jpeg
    from bench.ingest.models import TINY_DIMS
    from bench.ingest.stacks import create_index, write_stack

    index = f"converted-{uuid.uuid4().hex[:8]}"
    create_index(es, index, TINY_DIMS)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        (photos / f"img_{i}.jpg").write_bytes(small_jpeg(300 + i))
    path = write_stack(
        tmp_path / "stack.yaml",
        photos=photos,
        model=random_clip,
        index=index,
        dims=TINY_DIMS,
        url=es_target.url,
    )
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    body["encoders"]["clip"].update(runtime="onnx", precision="int8")
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    env = {**os.environ, "PROVISION_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "provisioning",
                "ingest",
                str(path),
                "--output",
                "json",
                "--es-url",
                es_target.url,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        (load,) = report["encoders"]
        assert (load["runtime"], load["precision"]) == ("onnx", "int8")
        assert (
            load["gate"]["passed"] is True
            and load["gate"]["calibration"] == "5 images of ingest job 'photos' and 59 generated images"
        )
        assert (
            load["fingerprint"]["vectors_id"] == EncoderFingerprint.from_json(load["fingerprint"]).vectors_id
        )
        assert report["jobs"][0]["indexed"] == 5
        assert "Traceback" not in done.stderr and "[torch.onnx]" not in done.stdout + done.stderr
        assert any((tmp_path / "cache" / "encoders").iterdir())
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
