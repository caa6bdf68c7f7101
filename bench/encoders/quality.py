"""Search quality of an image encoder on the tiny trained CLIP pair: text -> image top-1 per language.

The measure of ``tests/integration/test_tiny_clip_models.py``, with the image side computed by any
:class:`~provisioning.embedding.encoders.Encoder` (torch or converted): every caption of every class in
a language is a query, embedded by the trained multilingual text model; the gallery is the held-out
images (10 per class of all 42 classes, from a random stream training never used) written as JPEG and
decoded as ingest decodes them; a query is right when its nearest image (cosine) shows its class.
Used by the encoder benchmark and by the converted-encoder tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import synthetic_shapes as synthetic

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "models" / "tiny-clip"
QUICKSTART_SAMPLES = REPO / "examples" / "quickstart" / "samples"
HELD_OUT_SEED = 2  # train_tiny_clip.HELD_OUT_SEED: a stream the training images never come from
HELD_OUT_PER_CLASS = 10
TOP1_TOLERANCE = 0.02  # a converted encoder may lose at most this much top-1 per language


@dataclass(frozen=True)
class HeldOut:
    """The gallery: held-out image files and the class index of each."""

    paths: list[Path]
    labels: np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Queries:
    """Per language: caption vectors (n, d) from the trained text model, and the class of each."""

    by_language: dict[str, tuple[np.ndarray[Any, np.dtype[np.float32]], np.ndarray[Any, np.dtype[np.int64]]]]


def held_out(directory: Path) -> HeldOut:
    """Write the held-out images under ``directory`` (128 px JPEGs) and return them with their classes."""
    paths = synthetic.write_sample_set(directory, seed=HELD_OUT_SEED, per_class=HELD_OUT_PER_CLASS, size=128)
    index = {c.name: i for i, c in enumerate(synthetic.classes())}
    return HeldOut(list(paths), np.array([index[p.name.rsplit("-", 1)[0]] for p in paths], dtype=np.int64))


def caption_queries(text_model: Path = TINY / "text") -> Queries:
    """Every caption of every class, per language, embedded by the trained text model."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(text_model), device="cpu")
    out = {}
    for language in synthetic.LANGUAGES:
        texts: list[str] = []
        labels: list[int] = []
        for ci, shape_class in enumerate(synthetic.classes()):
            for caption in synthetic.captions(shape_class.shape, shape_class.colour, language):
                texts.append(caption)
                labels.append(ci)
        vectors = np.asarray(model.encode(texts, convert_to_numpy=True), dtype=np.float32)
        out[language] = (vectors, np.array(labels, dtype=np.int64))
    return Queries(out)


def text_to_image_top1(encoder: Any, gallery: HeldOut, queries: Queries) -> dict[str, float]:
    """Top-1 accuracy per language of the captions against ``encoder``'s vectors of the gallery."""
    from provisioning.image_ingest.decode import open_image

    images = [open_image(path, min_size=encoder.input_size).image for path in gallery.paths]
    vectors = encoder.encode_images(images)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    figures = {}
    for language, (texts, labels) in queries.by_language.items():
        q = texts / np.linalg.norm(texts, axis=1, keepdims=True)
        figures[language] = float((gallery.labels[(q @ vectors.T).argmax(axis=1)] == labels).mean())
    return figures
