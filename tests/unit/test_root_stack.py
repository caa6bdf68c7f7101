"""The repository's production stack.yaml validates, and says what the seed's system is."""

from __future__ import annotations

from pathlib import Path

from provisioning.mappings import find_field
from provisioning.stackfile import load_stack

REPO = Path(__file__).resolve().parents[2]


def test_root_stack_is_valid_and_matches_the_seed() -> None:
    stack = load_stack(REPO / "stack.yaml", {})
    spec = stack.spec
    text = spec.models["clip-text"]
    assert text.model_id == "sentence-transformers__clip-vit-b-32-multilingual-v1"
    assert text.source.hub == "sentence-transformers/clip-ViT-B-32-multilingual-v1"
    assert spec.encoders["clip-image"].source.hub == "sentence-transformers/clip-ViT-B-32"
    mappings = stack.effective_mappings("my-image-embeddings")
    vector = find_field(mappings, "image_embedding")
    assert vector is not None
    assert (vector["type"], vector["dims"], vector["similarity"]) == ("dense_vector", 512, "cosine")
    assert vector["index_options"]["type"] == "hnsw"
    for keyword in ("image_id", "image_name", "relative_path"):
        assert find_field(mappings, keyword) == {"type": "keyword"}
    assert find_field(mappings, "exif.date") == {"type": "date"}
    assert find_field(mappings, "exif.location") == {"type": "geo_point"}
    texts = {t.text for t in spec.smoke_tests.values() if t.text}
    assert "A mountain covered in snow" in texts
    assert any(t.image for t in spec.smoke_tests.values())
