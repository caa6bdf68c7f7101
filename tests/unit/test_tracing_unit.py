"""Fingerprints and the libtorch compatibility table, without tracing anything."""

from __future__ import annotations

from pathlib import Path

from provisioning.embedding.tracing import fingerprint, libtorch_for, torch_warning
from provisioning.stackfile.schema import ModelSpec, SourceSpec


def _model(path: str, **kw: object) -> ModelSpec:
    fields: dict[str, object] = {
        "model_id": "m",
        "source": SourceSpec(path=path),
        "task_type": "text_embedding",
        "max_model_input_length": 64,
    }
    fields.update(kw)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def test_fingerprint_follows_content_and_settings(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    first = fingerprint(_model("m"), tmp_path).digest
    assert fingerprint(_model("m"), tmp_path).digest == first
    assert fingerprint(_model("m", quantize=True), tmp_path).digest != first
    assert fingerprint(_model("m", max_model_input_length=32), tmp_path).digest != first
    (tmp_path / "m" / "config.json").write_text('{"changed": true}')
    assert fingerprint(_model("m"), tmp_path).digest != first


def test_hub_fingerprint_names_the_revision() -> None:
    spec = ModelSpec(
        model_id="m",
        source=SourceSpec(hub="org/model", revision="abc123"),
        task_type="text_embedding",
        max_model_input_length=64,
    )
    facts = fingerprint(spec, Path()).facts
    assert facts["source"] == {"hub": "org/model", "revision": "abc123"}
    assert "torch" in facts["toolchain"] and "eland" in facts["toolchain"]


def test_libtorch_table_and_warning() -> None:
    assert libtorch_for((8, 12, 2)) == (1, 13)
    assert libtorch_for((9, 0, 0)) == (2, 5)
    assert libtorch_for((7, 17, 0)) is None
    warning = torch_warning((9, 0, 0), "2.13.0")
    assert warning is not None and "2.5" in warning
    assert torch_warning((9, 0, 0), "2.5.1") is None
