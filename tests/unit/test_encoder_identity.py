"""The pieces behind converted encoders that need no model: the fingerprint value, the quality gate's
figures and verdicts, the record decision (mix or refuse), and the encoder settings of stack.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from provisioning.embedding.calibration import CalibrationSet, generated_image, generated_images
from provisioning.embedding.fingerprint import EncoderFingerprint, library_versions, source_digest
from provisioning.embedding.quality_gate import (
    GateVerdict,
    QualityGateError,
    calibration_pixels,
    cosines,
    neighbour_overlap,
    refusal,
)
from provisioning.image_ingest.encoder_record import EncoderMismatchError, EncoderRecord, decide, records_in
from provisioning.stackfile.schema import EncoderSpec


def _print(runtime: str = "onnx", precision: str = "int8", **kw: object) -> EncoderFingerprint:
    facts: dict[str, object] = {
        "source": "sha256:" + "ab" * 32,
        "runtime": runtime,
        "precision": precision,
        "normalize": False,
        "toolchain": (("onnxruntime", "1.32.0"),),
    }
    facts.update(kw)
    return EncoderFingerprint(**facts)  # type: ignore[arg-type]


# -- the fingerprint ---------------------------------------------------------------------------------


def test_fingerprint_round_trips_through_json() -> None:
    original = _print()
    text = json.dumps(original.to_json())
    again = EncoderFingerprint.from_json(json.loads(text))
    assert again == original
    assert again.vectors_id == original.vectors_id and again.digest == original.digest
    assert len(original.vectors_id) == 16 and len(original.digest) == 32


def test_vectors_id_names_the_vectors_and_digest_the_artifact() -> None:
    base = _print()
    newer = _print(toolchain=(("onnxruntime", "1.33.0"),))
    assert newer.vectors_id == base.vectors_id  # a library upgrade does not split an index
    assert newer.digest != base.digest  # but rebuilds the cached artifact
    assert _print(recipe=2).digest != base.digest and _print(recipe=2).vectors_id == base.vectors_id
    for other in (
        _print(precision="fp32"),
        _print(runtime="openvino"),
        _print(normalize=True),
        _print(source="hub:sentence-transformers/clip-ViT-B-32@main"),
    ):
        assert other.vectors_id != base.vectors_id and other.digest != base.digest


def test_fingerprint_from_json_refuses_what_it_did_not_write() -> None:
    good = _print().to_json()
    for broken, message in (
        ({**good, "runtime": "tensorrt"}, "'runtime' must be one of torch, onnx, openvino"),
        ({**good, "precision": "int4"}, "'precision' must be one of fp32, int8"),
        ({**good, "source": ""}, "'source' must be a non-empty string"),
        ({**good, "normalize": "yes"}, "'normalize' must be true or false"),
        ({**good, "vectors_id": "0" * 16}, "does not match its facts"),
    ):
        with pytest.raises(ValueError, match=message):
            EncoderFingerprint.from_json(broken)
    with pytest.raises(ValueError, match="a JSON object"):
        EncoderFingerprint.from_json([1, 2])


def test_describe_names_runtime_precision_source_and_vectors() -> None:
    described = _print().describe()
    assert described == f"onnx int8 of sha256:{'ab' * 6} (vectors {_print().vectors_id})"


def test_library_versions_name_each_runtime_s_libraries() -> None:
    names = dict(library_versions("openvino", "int8"))
    assert {"torch", "onnxscript", "openvino", "nncf"} <= set(names)
    assert "onnxruntime" not in names
    assert all("+" not in version for version in names.values())


def test_source_digest_follows_the_content(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    first = source_digest(tmp_path)
    assert first.startswith("sha256:") and source_digest(tmp_path) == first
    (tmp_path / "config.json").write_text('{"a": 1}')
    assert source_digest(tmp_path) != first


# -- the gate's figures --------------------------------------------------------------------------------


def test_neighbour_overlap_and_cosines() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(40, 16)).astype(np.float32)
    assert neighbour_overlap(reference, reference) == 1.0
    assert neighbour_overlap(reference, 3 * reference) == 1.0  # scale does not change cosine rankings
    assert np.allclose(cosines(reference, 2 * reference), 1.0)
    shuffled = reference[rng.permutation(40)]
    assert neighbour_overlap(reference, shuffled) < 0.5  # unrelated vectors share few neighbours
    slightly = reference + rng.normal(scale=0.01, size=reference.shape).astype(np.float32)
    assert neighbour_overlap(reference, slightly) > 0.9
    assert neighbour_overlap(reference[:1], reference[:1]) == 1.0
    # With 4 rows there are only 3 neighbours to compare.
    assert neighbour_overlap(reference[:4], reference[:4], k=10) == 1.0


def _verdict(mean_cosine: float = 0.995, overlap: float = 0.97) -> GateVerdict:
    return GateVerdict("d" * 32, "onnx", "int8", 64, "64 generated images", mean_cosine, 0.98, overlap)


def test_verdict_thresholds_and_json() -> None:
    assert _verdict().passed
    assert not _verdict(mean_cosine=0.9899).passed
    assert not _verdict(overlap=0.949).passed
    assert _verdict(mean_cosine=0.99, overlap=0.95).passed  # the bars are inclusive
    again = GateVerdict.from_json(json.loads(json.dumps(_verdict().to_json())))
    assert again == _verdict()
    with pytest.raises(ValueError, match="without 'mean_cosine'"):
        GateVerdict.from_json({k: v for k, v in _verdict().to_json().items() if k != "mean_cosine"})


def test_refusal_gives_the_figures_and_the_ways_out() -> None:
    error = refusal("clip-image", _print(), _verdict(mean_cosine=0.97, overlap=0.9))
    assert isinstance(error, QualityGateError) and error.verdict.mean_cosine == 0.97
    message = str(error)
    assert "encoder 'clip-image': onnx int8 does not match torch fp32" in message
    assert (
        "mean cosine 0.9700 (needs >= 0.99" in message
        and "neighbour overlap 0.900 (needs >= 0.95)" in message
    )
    assert "precision: fp32" in message and "runtime: openvino with precision: int8" in message
    assert "runtime: torch" in message
    fp32 = str(refusal("clip-image", _print(precision="fp32"), _verdict(mean_cosine=0.5)))
    assert "runtime: openvino" in fp32 and "precision: fp32 (" not in fp32


def test_calibration_uses_files_first_and_generates_the_rest(tmp_path: Path) -> None:
    for i in range(3):
        generated_image(100 + i).save(tmp_path / f"photo-{i}.jpg", "JPEG")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    files = tuple(sorted(tmp_path.glob("*.jpg")))

    def prepare(image: object) -> np.ndarray:
        return np.zeros((3, 8, 8), dtype=np.float32)

    pixels, description = calibration_pixels(
        CalibrationSet(files, "images of ingest job 'photos'", 20), prepare, 8
    )
    assert pixels.shape == (20, 3, 8, 8)
    assert description == "3 images of ingest job 'photos' and 17 generated images"
    _, none = calibration_pixels(CalibrationSet((), "images of ingest job 'photos'", 16), prepare, 8)
    assert none == "16 generated images (images of ingest job 'photos' has none)"
    assert [np.asarray(i).tobytes() for i in generated_images(2)] == [
        np.asarray(i).tobytes() for i in generated_images(2)
    ]


# -- the record decision --------------------------------------------------------------------------------


def test_same_encoder_writes_no_record_and_a_new_index_gets_one() -> None:
    ours = _print()
    same = decide(
        "photos",
        "images",
        "image_embedding",
        "clip",
        ours,
        EncoderRecord("clip", ours),
        full=False,
        has_documents=True,
    )
    assert same.write is None and not same.replacing
    fresh = decide("photos", "images", "image_embedding", "clip", ours, None, full=False, has_documents=False)
    assert fresh.write == EncoderRecord("clip", ours) and fresh.note is None
    upgraded = _print(toolchain=(("onnxruntime", "9.9.9"),))
    refreshed = decide(
        "photos",
        "images",
        "image_embedding",
        "clip",
        upgraded,
        EncoderRecord("clip", ours),
        full=False,
        has_documents=True,
    )
    assert refreshed.write == EncoderRecord("clip", upgraded)  # same vectors, fresher record


def test_another_encoder_is_refused_unless_full() -> None:
    theirs, ours = _print("torch", "fp32"), _print()
    with pytest.raises(EncoderMismatchError) as caught:
        decide(
            "photos",
            "images",
            "image_embedding",
            "clip",
            ours,
            EncoderRecord("clip", theirs),
            full=False,
            has_documents=True,
        )
    message = str(caught.value)
    assert "index 'images' field 'image_embedding' holds vectors from encoder clip: torch fp32" in message
    assert (
        "stack's encoder is clip: onnx int8" in message and "provision ingest STACK photos --full" in message
    )
    full = decide(
        "photos",
        "images",
        "image_embedding",
        "clip",
        ours,
        EncoderRecord("clip", theirs),
        full=True,
        has_documents=True,
    )
    assert full.replacing and full.write == EncoderRecord("clip", ours, replacing=theirs.vectors_id)


def test_an_unfinished_replacement_refuses_incremental_runs() -> None:
    ours = _print()
    marked = EncoderRecord("clip", ours, replacing="0123456789abcdef")
    with pytest.raises(EncoderMismatchError, match="did not finish"):
        decide("photos", "images", "image_embedding", "clip", ours, marked, full=False, has_documents=True)
    resumed = decide(
        "photos", "images", "image_embedding", "clip", ours, marked, full=True, has_documents=True
    )
    assert resumed.replacing and resumed.write is None


def test_records_in_reads_every_field_and_reports_broken_ones() -> None:
    good = EncoderRecord("clip", _print())
    meta = {"managed_by": "provision", "provision_encoders": {"a": good.to_json(), "b": {"encoder": 3}}}
    found = records_in(meta)
    assert found["a"] == good and isinstance(found["b"], str)
    with pytest.raises(EncoderMismatchError, match="unreadable encoder"):
        decide("photos", "images", "b", "clip", _print(), found["b"], full=False, has_documents=True)
    assert records_in({}) == {}


# -- stack.yaml -------------------------------------------------------------------------------------------


def test_encoder_spec_defaults_and_rules() -> None:
    spec = EncoderSpec.model_validate({"source": {"path": "m"}})
    assert (spec.runtime, spec.precision, spec.threads, spec.calibration.images) == (
        "torch",
        "fp32",
        None,
        64,
    )
    assert EncoderSpec.model_validate(
        {"source": {"path": "m"}, "runtime": "onnx", "precision": "int8", "device": "cuda"}
    )
    with pytest.raises(ValidationError, match="needs a converted model"):
        EncoderSpec.model_validate({"source": {"path": "m"}, "precision": "int8"})
    with pytest.raises(ValidationError, match="runs on the CPU here"):
        EncoderSpec.model_validate({"source": {"path": "m"}, "runtime": "openvino", "device": "cuda"})
    with pytest.raises(ValidationError):
        EncoderSpec.model_validate({"source": {"path": "m"}, "runtime": "tensorrt"})
    with pytest.raises(ValidationError):
        EncoderSpec.model_validate({"source": {"path": "m"}, "calibration": {"images": 4}})
