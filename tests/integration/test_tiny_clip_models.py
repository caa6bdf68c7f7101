"""The tiny CLIP fixtures in ``models/tiny-clip/``: trainable, loadable, traceable, and good enough.

Every offline test of uploads, ingest and smoke tests, and the quickstart, rely on these two models
standing in for ``clip-ViT-B-32`` and ``clip-ViT-B-32-multilingual-v1``. What is checked here is
what those callers rely on:

* the training script still runs (a shortened ``--quick`` run) and writes directories that load;
* ``--untrained`` writes the same shapes with random weights (the "smoke tests must fail" fixture);
* quality through the real path: the text model traced by eland and run as TorchScript, fed tokens
  the way Elasticsearch makes them from the uploaded vocabulary and recorded tokenization config,
  and images read from JPEG files and embedded by sentence-transformers;
* the traced model returns what ``SentenceTransformer.encode`` returns;
* ``inspect_model_dir`` reports the dimensions the stack's ``dense_vector`` must have.

Metric (text -> image top-1): every caption of every class in a language (all six templates, every
colour word, including the template never used in training) is a query; the gallery is the held-out
images, 10 per class of all 42 classes, drawn from a random stream training never used and written
as JPEG; a query counts as right when its nearest image by cosine shows the caption's shape in the
caption's colour. The bar is 0.9 per language.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import synthetic_shapes as synthetic
from provisioning.embedding.inspect import inspect_model_dir

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "models" / "train_tiny_clip.py"
TINY = REPO / "models" / "tiny-clip"
IMAGE_DIR = TINY / "image"
TEXT_DIR = TINY / "text"
EMBED_DIM = 32
HELD_OUT_SEED = 2  # train_tiny_clip.HELD_OUT_SEED: a stream the training images never come from
HELD_OUT_PER_CLASS = 10
ACCURACY_BAR = 0.9
# Example-image queries (nearest other held-out image has the query's class); the shipped models
# reach about 0.89: shape is harder than colour for a 3-layer ViT on 64 pixels.
IMAGE_QUERY_BAR = 0.85

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def _run_script(*args: str) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"train_tiny_clip.py {' '.join(args)}: {time.perf_counter() - started:.1f}s")


def test_quick_run_writes_loadable_models(tmp_path: Path) -> None:
    """A shortened training run writes both directories; they load offline and embed.

    Run twice: the weights must come out byte for byte the same (fixed seeds, deterministic
    algorithms, fixed thread count), or retraining could not reproduce the committed models.
    """
    from sentence_transformers import SentenceTransformer

    _run_script("--quick", "--out", str(tmp_path))
    _run_script("--quick", "--no-eval", "--out", str(tmp_path / "again"))
    for name in ("image/model.safetensors", "text/model.safetensors", "text/2_Dense/model.safetensors"):
        assert (tmp_path / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    image_model = SentenceTransformer(str(tmp_path / "image"), device="cpu")
    text_model = SentenceTransformer(str(tmp_path / "text"), device="cpu")
    images = [s.image for s in synthetic.generate(0, 1, size=96)][:3]
    assert image_model.encode(images).shape == (3, EMBED_DIM)
    assert text_model.encode(["ein roter Kreis", "un círculo rojo"]).shape == (2, EMBED_DIM)
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["mode"] == "quick"
    assert set(metrics["held_out"]["student"]) == {"en", "de", "es"}


def _configs(directory: Path) -> dict[str, Any]:
    return {
        name: json.loads((directory / name).read_text(encoding="utf-8"))
        for name in ("config.json", "modules.json")
    }


def test_untrained_models_have_the_shipped_shapes(tmp_path: Path) -> None:
    """``--untrained`` gives the same architecture and vocabulary as the shipped models, other weights."""
    from safetensors.torch import load_file

    _run_script("--untrained", "--no-eval", "--out", str(tmp_path))
    for name in ("image", "text"):
        assert _configs(tmp_path / name) == _configs(TINY / name)
        ours = load_file(str(tmp_path / name / "model.safetensors"))
        shipped = load_file(str(TINY / name / "model.safetensors"))
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in shipped.items()}
        assert any(not torch.equal(ours[k], shipped[k]) for k in ours)
    assert (tmp_path / "text" / "vocab.txt").read_text() == (TEXT_DIR / "vocab.txt").read_text()
    dense = "2_Dense/config.json"
    assert json.loads((tmp_path / "text" / dense).read_text()) == json.loads((TEXT_DIR / dense).read_text())


def test_inspect_model_dir_reports_the_shared_dims() -> None:
    image = inspect_model_dir(IMAGE_DIR)
    text = inspect_model_dir(TEXT_DIR)
    assert image.dims == text.dims == EMBED_DIM
    assert not image.normalized
    assert not text.normalized


@dataclass
class Traced:
    """The text model as Elasticsearch gets it from eland: TorchScript, config and vocabulary."""

    module: Any
    config: dict[str, Any]
    tokenizer: Any
    max_length: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Tokenize as Elasticsearch's BERT tokenizer does from the recorded config, then run the graph."""
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        ids = tokens["input_ids"]
        positions = torch.arange(ids.shape[1]).expand_as(ids)
        with torch.no_grad():
            out = self.module(ids, tokens["attention_mask"], torch.zeros_like(ids), positions)
        return out.numpy().astype(np.float64)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    from eland.ml.pytorch.transformers import TransformerModel
    from transformers import BertTokenizer

    out = tmp_path_factory.mktemp("traced")
    # task_type must be explicit: "auto" fails on a local path. max_model_input_size is explicit too.
    model = TransformerModel(
        model_id=str(TEXT_DIR),
        task_type="text_embedding",
        es_version=(9, 2, 0),
        quantize=False,
        max_model_input_size=64,
    )
    model_path, config, vocab_path = model.save(str(out))
    config_dict = config.to_dict()
    tokenization = config_dict["inference_config"]["text_embedding"]["tokenization"]
    assert list(tokenization) == ["bert"]
    bert = tokenization["bert"]
    assert bert["do_lower_case"] is True
    assert config_dict["inference_config"]["text_embedding"]["embedding_size"] == EMBED_DIM
    vocabulary = json.loads(Path(vocab_path).read_text(encoding="utf-8"))["vocabulary"]
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    # Elasticsearch strips accents exactly when it lower-cases (strip_accents unset): so does this.
    tokenizer = BertTokenizer(str(vocab_file), do_lower_case=bert["do_lower_case"])
    yield Traced(torch.jit.load(model_path), config_dict, tokenizer, int(bert["max_sequence_length"]))


def test_traced_model_matches_sentence_transformers(traced: Traced) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(TEXT_DIR), device="cpu")
    texts = [
        "a red circle",
        "ein roter Kreis",
        "un círculo rojo",
        "Una fotografía de una ESTRELLA roja!",
        "eine Zeichnung von einem lila Quadrat",
        "something else entirely, with unknown words",
    ]
    expected = st.encode(texts, convert_to_numpy=True).astype(np.float64)
    batched = traced.encode(texts)
    one_by_one = np.concatenate([traced.encode([t]) for t in texts])
    assert np.abs(batched - expected).max() < 1e-4
    assert np.abs(one_by_one - expected).max() < 1e-4


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """Held-out images written as JPEG, read back from disk and embedded by sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    directory = tmp_path_factory.mktemp("held-out")
    paths = synthetic.write_sample_set(directory, seed=HELD_OUT_SEED, per_class=HELD_OUT_PER_CLASS, size=128)
    index = {c.name: i for i, c in enumerate(synthetic.classes())}
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    labels = np.array([index[p.name.rsplit("-", 1)[0]] for p in paths])
    model = SentenceTransformer(str(IMAGE_DIR), device="cpu")
    vectors = model.encode(images, batch_size=64, convert_to_numpy=True).astype(np.float64)
    return vectors, labels


def _top1(queries: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray, labels: np.ndarray) -> float:
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    return float((labels[(q @ g.T).argmax(axis=1)] == query_labels).mean())


def test_text_to_image_top1_per_language(traced: Traced, held_out: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, labels = held_out
    figures: dict[str, float] = {}
    for language in synthetic.LANGUAGES:
        texts: list[str] = []
        query_labels: list[int] = []
        for ci, c in enumerate(synthetic.classes()):
            for text in synthetic.captions(c.shape, c.colour, language):
                texts.append(text)
                query_labels.append(ci)
        figures[language] = _top1(traced.encode(texts), np.array(query_labels), vectors, labels)
    print(f"text->image top-1 over {len(labels)} held-out images: {figures}")
    assert all(value >= ACCURACY_BAR for value in figures.values()), figures


def test_quickstart_queries_find_their_images(
    traced: Traced, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    """The quickstart's smoke-test queries: the nearest held-out image is a red circle, in 3 languages."""
    vectors, labels = held_out
    red_circle = synthetic.classes().index(synthetic.ShapeClass("circle", "red"))
    queries = traced.encode(["a red circle", "ein roter Kreis", "un círculo rojo"])
    assert _top1(queries, np.full(3, red_circle), vectors, labels) == 1.0
    # Example-image queries: an image's nearest other image is of its class.
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    image_top1 = float((labels[sims.argmax(axis=1)] == labels).mean())
    print(f"image->image top-1: {image_top1:.3f}")
    assert image_top1 >= IMAGE_QUERY_BAR
