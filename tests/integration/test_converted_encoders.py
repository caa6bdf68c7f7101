"""Converted image encoders (ONNX Runtime, OpenVINO; fp32 and int8): conversion cached by fingerprint,
the quality gate (accepting, refusing a deliberately broken conversion, caching its verdict), and
search quality on the tiny trained CLIP pair.

Real exports, real quantisers, real runtimes; no mocks. Models: the tiny trained pair in
``models/tiny-clip`` (quality) and a tiny random CLIP written by ``bench.ingest.models``.

Quality metric (as in test_tiny_clip_models.py): every caption of every class in a language is a
query; the gallery is the held-out images (10 per class of 42, a random stream training never used)
written as JPEG and decoded as ingest decodes them; a query is right when its nearest image shows
its class. An encoder the gate accepts must stay within 0.02 of torch fp32 for each language.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import synthetic_shapes as synthetic
from bench.ingest.models import save_tiny_clip
from provisioning.embedding import conversion
from provisioning.embedding.calibration import CalibrationSet
from provisioning.embedding.conversion import EncoderCache
from provisioning.embedding.encoders import Encoder, declared_fingerprint, load_encoder
from provisioning.embedding.quality_gate import MIN_MEAN_COSINE, QualityGateError
from provisioning.image_ingest.decode import open_image
from provisioning.stackfile.schema import EncoderSpec
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TINY = REPO / "models" / "tiny-clip"
SAMPLES = REPO / "examples" / "quickstart" / "samples"
HELD_OUT_SEED = 2
TOP1_TOLERANCE = 0.02
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
def held_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], np.ndarray]:
    directory = tmp_path_factory.mktemp("held-out")
    paths = synthetic.write_sample_set(directory, seed=HELD_OUT_SEED, per_class=10, size=128)
    index = {c.name: i for i, c in enumerate(synthetic.classes())}
    return paths, np.array([index[p.name.rsplit("-", 1)[0]] for p in paths])


@pytest.fixture(scope="module")
def queries() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per language: every caption's vector (the trained text model) and its class."""
    from sentence_transformers import SentenceTransformer

    text = SentenceTransformer(str(TINY / "text"), device="cpu")
    out = {}
    for language in synthetic.LANGUAGES:
        texts, labels = [], []
        for ci, shape_class in enumerate(synthetic.classes()):
            for caption in synthetic.captions(shape_class.shape, shape_class.colour, language):
                texts.append(caption)
                labels.append(ci)
        out[language] = (np.asarray(text.encode(texts, convert_to_numpy=True)), np.array(labels))
    return out


def _top1(
    encoder: Encoder, held_out: tuple[list[Path], np.ndarray], queries: dict[str, Any]
) -> dict[str, float]:
    paths, labels = held_out
    gallery = encoder.encode_images([open_image(p, min_size=encoder.input_size).image for p in paths])
    gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    figures = {}
    for language, (vectors, query_labels) in queries.items():
        q = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        figures[language] = float((labels[(q @ gallery.T).argmax(axis=1)] == query_labels).mean())
    return figures


@pytest.fixture(scope="module")
def torch_top1(held_out: tuple[list[Path], np.ndarray], queries: dict[str, Any]) -> dict[str, float]:
    figures = _top1(load_encoder("clip-image", _spec(TINY / "image"), Path("/")), held_out, queries)
    assert all(value >= 0.9 for value in figures.values()), figures
    return figures


@pytest.mark.parametrize(("runtime", "precision"), VARIANTS)
def test_accepted_encoders_keep_text_to_image_top1_within_002_per_language(
    runtime: str,
    precision: str,
    held_out: tuple[list[Path], np.ndarray],
    queries: dict[str, Any],
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
    figures = _top1(encoder, held_out, queries)
    print(f"{runtime} {precision}: top-1 {figures} vs torch fp32 {torch_top1}; {encoder.verdict.figures()}")
    for language, value in figures.items():
        assert abs(value - torch_top1[language]) <= TOP1_TOLERANCE, (language, value, torch_top1[language])
