"""Local encoders: loading (path, bare CLIP directory, hub with and without a reachable hub), device
selection, preprocessing identical to the CLIP processor, batching, text and image embeddings.

The model is a tiny randomly initialised CLIP written by ``bench.ingest.models`` (the same code
writes the full-size one for the benchmark): real sentence-transformers loading and inference, no
mocks.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.ingest.models import TINY_DIMS, save_tiny_clip
from provisioning.embedding import encoders, hub
from provisioning.embedding.encoders import resolve_device
from provisioning.embedding.errors import EncoderError, HubUnavailableError
from provisioning.embedding.hub import probe_endpoint
from provisioning.embedding.loading import load_encoder
from provisioning.embedding.preprocessing import ImagePreprocessing
from provisioning.stackfile.schema import EncoderSpec, SourceSpec


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture(scope="module")
def encoder(tiny_clip: Path) -> encoders.Encoder:
    return load_encoder("clip", EncoderSpec(source=SourceSpec(path=str(tiny_clip)), batch_size=4), Path("/"))


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def test_loads_a_sentence_transformers_directory(encoder: encoders.Encoder) -> None:
    assert encoder.supports_images
    assert encoder.dims == TINY_DIMS
    assert encoder.input_size == 64  # the tiny model's processor: shortest edge 64, crop 64x64
    assert encoder.device == "cpu"
    assert encoder.preprocessing is not None


def test_relative_path_is_resolved_against_the_base_dir(tiny_clip: Path) -> None:
    spec = EncoderSpec(source=SourceSpec(path=tiny_clip.name))
    loaded = load_encoder("clip", spec, tiny_clip.parent)
    assert loaded.source == str(tiny_clip)


def test_loads_a_bare_hugging_face_clip_directory(tiny_clip: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(tiny_clip, bare)
    (bare / "modules.json").unlink()
    loaded = load_encoder("clip", EncoderSpec(source=SourceSpec(path=str(bare))), Path("/"))
    assert loaded.supports_images and loaded.dims == TINY_DIMS


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    spec = EncoderSpec(source=SourceSpec(path="nope"))
    with pytest.raises(EncoderError, match="model directory not found"):
        load_encoder("clip", spec, tmp_path)


def test_a_directory_that_is_no_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(EncoderError, match="neither a sentence-transformers model"):
        load_encoder("clip", EncoderSpec(source=SourceSpec(path=str(tmp_path))), Path("/"))


@pytest.mark.parametrize("size", [(375, 250), (250, 375), (64, 64), (65, 64), (100, 300), (33, 20)])
def test_prepare_matches_the_clip_processor(encoder: encoders.Encoder, size: tuple[int, int]) -> None:
    image = _image(*size)
    ours = encoder.prepare(image)
    reference = encoder._processor(images=image, return_tensors="np")["pixel_values"][0]
    assert ours.shape == reference.shape == (3, 64, 64)
    assert np.abs(ours - reference).max() < 1e-5


def test_prepare_trims_extreme_strips_instead_of_blowing_them_up(encoder: encoders.Encoder) -> None:
    strip = _image(20_000, 2)  # a processor would resize this to 640000x64 first
    started = time.perf_counter()
    assert encoder.prepare(strip).shape == (3, 64, 64)
    assert time.perf_counter() - started < 1.0


def test_unsupported_processor_configuration_falls_back_to_the_processor() -> None:
    from transformers import CLIPImageProcessor

    padded = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 48, "width": 48})
    assert ImagePreprocessing.from_processor(padded) is None  # the processor would pad: not reproduced
    exact = CLIPImageProcessor(size={"height": 40, "width": 50}, crop_size={"height": 32, "width": 32})
    preprocessing = ImagePreprocessing.from_processor(exact)
    assert preprocessing is not None
    image = _image(90, 70)
    reference = exact(images=image, return_tensors="np")["pixel_values"][0]
    assert np.abs(preprocessing(image) - reference).max() < 1e-5


def test_image_embeddings_equal_sentence_transformers_encode(encoder: encoders.Encoder) -> None:
    images = [_image(120, 90, seed) for seed in range(3)]
    ours = encoder.encode_images(images)
    reference = encoder.model.encode(images, convert_to_numpy=True)
    assert ours.shape == (3, TINY_DIMS) and ours.dtype == np.float32
    assert np.abs(ours - reference).max() < 1e-5


def test_batches_are_counted_and_do_not_change_results(encoder: encoders.Encoder) -> None:
    prepared = [encoder.prepare(_image(80, 80, seed)) for seed in range(7)]
    before_images, before_batches = encoder.images_encoded, encoder.batches_encoded
    batched = encoder.encode_prepared(prepared, batch_size=3)
    assert encoder.images_encoded - before_images == 7
    assert encoder.batches_encoded - before_batches == 3  # 3 + 3 + 1
    whole = encoder.encode_prepared(prepared, batch_size=16)
    assert np.abs(batched - whole).max() < 1e-5
    assert encoder.encode_prepared([]).shape == (0, TINY_DIMS)


def test_text_embeddings_come_from_the_text_tower(encoder: encoders.Encoder) -> None:
    texts = ["a red circle", "ein roter Kreis"]
    ours = encoder.encode_texts(texts)
    assert ours.shape == (2, TINY_DIMS)
    assert np.abs(ours - encoder.model.encode(texts, convert_to_numpy=True)).max() < 1e-5


def test_normalize_gives_unit_vectors(tiny_clip: Path) -> None:
    spec = EncoderSpec(source=SourceSpec(path=str(tiny_clip)), normalize=True)
    normalizing = load_encoder("clip", spec, Path("/"))
    vectors = np.concatenate([normalizing.encode_images([_image(70, 70)]), normalizing.encode_texts(["x"])])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_device_selection() -> None:
    import torch

    assert resolve_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda"
        assert resolve_device("auto") == "cuda"
    else:
        with pytest.raises(EncoderError, match="no CUDA device"):
            resolve_device("cuda")
        assert resolve_device("auto") in ("cpu", "mps")


# -- hub sources fail fast ---------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_hub_source_with_hf_hub_offline_fails_fast_pointing_at_source_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = EncoderSpec(source=SourceSpec(hub="provision-tests/not-cached-anywhere"))
    started = time.perf_counter()
    with pytest.raises(HubUnavailableError) as caught:
        load_encoder("clip-image", spec, Path("/"))
    assert time.perf_counter() - started < 5
    message = str(caught.value)
    assert "HF_HUB_OFFLINE is set" in message
    assert "encoders.clip-image.source.path" in message


def test_hub_source_without_offline_flag_fails_fast_when_the_hub_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    spec = EncoderSpec(source=SourceSpec(hub="clip-ViT-B-32-not-cached"))
    started = time.perf_counter()
    with pytest.raises(HubUnavailableError) as caught:
        load_encoder("clip-image", spec, Path("/"))
    assert time.perf_counter() - started < 5
    message = str(caught.value)
    assert "sentence-transformers/clip-ViT-B-32-not-cached" in message  # an id without owner is ST's
    assert "cannot be reached" in message and "source.path" in message


def test_probe_gives_up_after_its_timeout() -> None:
    # A server that accepts the connection and never answers (an intercepting proxy can look so).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.perf_counter()
        reason = probe_endpoint(f"http://127.0.0.1:{port}/", timeout=0.3)
        assert reason is not None and "did not answer within 0.3s" in reason
        assert time.perf_counter() - started < 2


def test_probe_counts_any_http_answer_as_reachable() -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from threading import Thread

    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with HTTPServer(("127.0.0.1", 0), NotFound) as server:
        Thread(target=server.handle_request, daemon=True).start()
        assert probe_endpoint(f"http://127.0.0.1:{server.server_address[1]}/", timeout=2) is None


def test_probe_goes_through_the_configured_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    reason = probe_endpoint("https://huggingface.co", timeout=1)
    assert reason is not None and f"through the proxy 127.0.0.1:{port}" in reason


def test_unreachable_hub_loads_a_cached_copy_offline(
    tiny_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model in the Hugging Face cache is used as is when the hub cannot be asked (either way)."""
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--provision-tests--tiny-clip"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_clip, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = EncoderSpec(source=SourceSpec(hub="provision-tests/tiny-clip"))

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    unreachable = load_encoder("clip", spec, Path("/"))
    assert unreachable.dims == TINY_DIMS and unreachable.source == "hub:provision-tests/tiny-clip"

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = load_encoder("clip", spec, Path("/"))
    assert offline.dims == TINY_DIMS


def test_environment_offline_values() -> None:
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    try:
        os.environ.pop("TRANSFORMERS_OFFLINE", None)
        for value, expected in (("1", True), ("ON", True), ("true", True), ("0", False), ("", False)):
            os.environ["HF_HUB_OFFLINE"] = value
            assert hub.hub_offline_requested() is expected
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _same(a: ImagePreprocessing | None, b: ImagePreprocessing | None) -> bool:
    assert a is not None and b is not None
    arrays = ("mean", "std")
    plain = [f for f in a.__dataclass_fields__ if f not in arrays]
    return all(getattr(a, f) == getattr(b, f) for f in plain) and all(
        np.array_equal(getattr(a, f), getattr(b, f)) for f in arrays
    )


def test_preprocessing_from_the_config_file_equals_the_processor_s(tiny_clip: Path) -> None:
    """Converted encoders read preprocessor_config.json without transformers (no torch import)."""
    from transformers import CLIPImageProcessor

    config = json.loads((tiny_clip / "preprocessor_config.json").read_text())
    from_file = ImagePreprocessing.from_config(config)
    assert _same(
        from_file, ImagePreprocessing.from_processor(CLIPImageProcessor.from_pretrained(str(tiny_clip)))
    )
    # The older form (openai/clip-vit-base-patch32): integer sizes, a feature extractor type, defaults.
    legacy = {"feature_extractor_type": "CLIPFeatureExtractor", "size": 224, "crop_size": 224, "resample": 3}
    reference = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    assert _same(ImagePreprocessing.from_config(legacy), ImagePreprocessing.from_processor(reference))
    assert ImagePreprocessing.from_config({"image_processor_type": "SiglipImageProcessor"}) is None
