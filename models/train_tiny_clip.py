#!/usr/bin/env python3
"""Train the tiny CLIP pair in ``models/tiny-clip/``: the offline stand-ins for the real models.

The production stack pairs ``clip-ViT-B-32`` (images, embedded on the ingest host by
sentence-transformers) with ``clip-ViT-B-32-multilingual-v1`` (a DistilBERT student, traced by eland
and run inside Elasticsearch, distilled into the same space). Nothing can be downloaded where this
project is built and tested, so this script builds the same pair, tiny, and trains it on the synthetic
coloured-shapes set of :mod:`synthetic_shapes`, so that search results mean something
("a red circle", "ein roter Kreis", "un círculo rojo" find red circles).

It mirrors how the real pair was made:

1. CLIP stage: a tiny ViT image tower and a tiny CLIP text tower (English, byte-level BPE like
   OpenAI's) are trained together with the CLIP contrastive loss on image/caption pairs.
2. Distillation stage: a tiny multilingual DistilBERT student (WordPiece vocabulary, mean pooling,
   a bias-free Dense projection, like the real student) learns to put English, German and Spanish
   captions where the CLIP text tower puts the parallel English caption (MSE, as in "Making
   Monolingual Sentence Embeddings Multilingual"), with a contrastive term against the frozen image
   embeddings of the caption's class that sharpens retrieval.

Outputs, under ``--out`` (default ``models/tiny-clip``):

* ``image/``: a Hugging Face CLIP directory (``CLIPModel``/``CLIPProcessor``) that is also a
  sentence-transformers directory (``modules.json`` with ``sentence_transformers.models.CLIPModel``
  stored in the root, the layout sentence-transformers 5 writes), so ``SentenceTransformer(path)``
  encodes PIL images (and English text through the CLIP text tower).
* ``text/``: a sentence-transformers directory, DistilBERT in the root + ``1_Pooling`` +
  ``2_Dense``, the layout of the real multilingual student, which eland's ``TransformerModel`` traces.
* ``metrics.json``: the configuration, timings and held-out retrieval figures of the run.

Deterministic: fixed seeds, ``torch.use_deterministic_algorithms``, CPU only, a fixed thread count.
Run ``python models/train_tiny_clip.py --help`` for the options; ``--quick`` is a shortened run for
tests, ``--untrained`` writes same-shape models with random weights (for tests that must fail).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Before transformers is imported: a hub lookup where there is no network hangs for over a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout, without installing the package
    sys.path.insert(0, str(REPO))

import synthetic_shapes as synthetic  # noqa: E402

# --- architecture: fixed, so that --quick and --untrained write the same shapes as a full run -----
EMBED_DIM = 32  # the shared space (dense_vector dims); the real pair uses 512
IMAGE_SIZE = 64  # the vision tower's input; the processor resizes the shortest edge to this
PATCH_SIZE = 8
VISION_HIDDEN = 64
VISION_LAYERS = 3
VISION_HEADS = 4
CLIP_TEXT_HIDDEN = 32
CLIP_TEXT_LAYERS = 1
CLIP_TEXT_MAX_LEN = 32
STUDENT_DIM = 64  # DistilBERT hidden size; the Dense layer maps it to EMBED_DIM (768 -> 512 for real)
STUDENT_LAYERS = 2
STUDENT_HEADS = 4
STUDENT_FFN = 128
STUDENT_MAX_LEN = 64  # max_position_embeddings, tokenizer model_max_length and ST max_seq_length
SOURCE_SIZE = 128  # training images are rendered at this size, then resized like the processor does

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

TRAIN_SEED = 1  # image streams: training and held-out images never share a random stream
HELD_OUT_SEED = 2
TRAIN_TEMPLATES = tuple(t for t in range(synthetic.TEMPLATE_COUNT) if t != synthetic.HELD_OUT_TEMPLATE)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class RunConfig:
    """How much to train; the architecture does not depend on it."""

    train_per_class: int
    held_out_per_class: int
    clip_steps: int
    clip_batch: int
    clip_lr: float
    student_steps: int
    student_batch: int
    student_lr: float
    contrastive_weight: float
    image_weight: float
    jpeg_fraction: float


FULL = RunConfig(
    train_per_class=100,
    held_out_per_class=10,
    clip_steps=1200,
    clip_batch=128,
    clip_lr=2e-3,
    student_steps=300,
    student_batch=128,
    student_lr=2e-3,
    contrastive_weight=0.2,
    image_weight=0.5,
    jpeg_fraction=0.5,
)
QUICK = RunConfig(
    train_per_class=2,
    held_out_per_class=1,
    clip_steps=3,
    clip_batch=32,
    clip_lr=2e-3,
    student_steps=3,
    student_batch=32,
    student_lr=2e-3,
    contrastive_weight=0.2,
    image_weight=0.5,
    jpeg_fraction=0.5,
)


def log(message: str) -> None:
    print(f"[train_tiny_clip] {message}", file=sys.stderr, flush=True)


# --- vocabularies --------------------------------------------------------------------------------


def all_captions(templates: Sequence[int] | None = None) -> list[tuple[int, str, synthetic.Language]]:
    """Every (class index, caption, language) of the synthetic set for the given templates."""
    out: list[tuple[int, str, synthetic.Language]] = []
    for ci, sc in enumerate(synthetic.classes()):
        for lang in synthetic.LANGUAGES:
            out.extend((ci, text, lang) for text in synthetic.captions(sc.shape, sc.colour, lang, templates))
    return out


def strip_accents_lower(text: str) -> str:
    """What BERT's basic tokenizer (and Elasticsearch's, with do_lower_case) does before WordPiece."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def wordpiece_vocab() -> list[str]:
    """The student's vocab.txt: special tokens, single characters as a fallback, then caption words.

    Words are taken after the same normalisation the tokenizer applies (lower case, accents
    stripped: "círculo" -> "circulo", "grün" -> "grun"), so with ``do_lower_case: true`` the Hugging
    Face tokenizer, eland's recorded config and Elasticsearch's tokenizer all agree. Single letters
    and ``##`` continuations mean unknown words split into pieces instead of all becoming [UNK].
    """
    from transformers.models.bert.tokenization_bert import BasicTokenizer

    basic = BasicTokenizer(do_lower_case=True)
    words: set[str] = set()
    for _, text, _ in all_captions():
        words.update(basic.tokenize(text))
    chars = [*"abcdefghijklmnopqrstuvwxyz0123456789", "ß"]
    punctuation = list(".,;:!?'\"-()/&")
    vocab = [*SPECIAL_TOKENS, *punctuation, *chars, *(f"##{c}" for c in chars)]
    vocab.extend(sorted(w for w in words if w not in vocab))
    return vocab


def clip_bpe(words: Sequence[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary and merge list (OpenAI CLIP format) in which each word is one token.

    Merges are added only when the words seen so far do not already reduce a new word to one symbol,
    and always at the lowest priority, which leaves the tokenization of earlier words unchanged.
    """
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    byte_chars = list(bytes_to_unicode().values())
    vocab: list[str] = [*byte_chars, *(c + "</w>" for c in byte_chars)]
    known = set(vocab)
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}

    def bpe(word: str) -> list[str]:
        symbols = [*word[:-1], word[-1] + "</w>"]
        while len(symbols) > 1:
            pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(itertools.pairwise(symbols))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            symbols = [*symbols[:i], symbols[i] + symbols[i + 1], *symbols[i + 2 :]]
        return symbols

    for word in words:
        symbols = bpe(word)
        while len(symbols) > 1:
            pair = (symbols[0], symbols[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            if pair[0] + pair[1] not in known:
                known.add(pair[0] + pair[1])
                vocab.append(pair[0] + pair[1])
            symbols = bpe(word)
    vocab.extend(["<|startoftext|>", "<|endoftext|>"])
    return {token: i for i, token in enumerate(vocab)}, merges


# --- models --------------------------------------------------------------------------------------


def build_clip_tokenizer(directory: Path) -> Any:
    """Write vocab.json/merges.txt for the English caption words and load a CLIPTokenizer from them."""
    from transformers import CLIPTokenizer

    words = sorted({w for _, text, lang in all_captions() if lang == "en" for w in text.lower().split()})
    vocab, merges = clip_bpe(words)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n"
    (directory / "merges.txt").write_text(merges_text, encoding="utf-8")
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=CLIP_TEXT_MAX_LEN
    )


def build_image_processor() -> Any:
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
    )


def build_clip(vocab_size: int, bos: int, eos: int, seed: int) -> Any:
    """A tiny CLIPModel: ViT image tower (the part ingest uses) and a small English text tower."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    vision = CLIPVisionConfig(
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        hidden_size=VISION_HIDDEN,
        intermediate_size=VISION_HIDDEN * 2,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=VISION_HEADS,
        projection_dim=EMBED_DIM,
    )
    text = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=CLIP_TEXT_HIDDEN,
        intermediate_size=CLIP_TEXT_HIDDEN * 2,
        num_hidden_layers=CLIP_TEXT_LAYERS,
        num_attention_heads=2,
        max_position_embeddings=CLIP_TEXT_MAX_LEN,
        projection_dim=EMBED_DIM,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=EMBED_DIM)
    # Eager attention: on a CPU with these tiny sizes it trains several times faster than SDPA.
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return CLIPModel(config)


def build_student(directory: Path, seed: int) -> Any:
    """The multilingual text student as a SentenceTransformer: DistilBERT + mean pooling + Dense."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = wordpiece_vocab()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = DistilBertTokenizer(
        str(directory / "vocab.txt"), do_lower_case=True, model_max_length=STUDENT_MAX_LEN
    )
    tokenizer.save_pretrained(str(directory))
    config = DistilBertConfig(
        vocab_size=len(vocab),
        max_position_embeddings=STUDENT_MAX_LEN,
        dim=STUDENT_DIM,
        n_layers=STUDENT_LAYERS,
        n_heads=STUDENT_HEADS,
        hidden_dim=STUDENT_FFN,
        dropout=0.0,
        attention_dropout=0.0,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    DistilBertModel(config).save_pretrained(str(directory))
    transformer = st_models.Transformer(str(directory), max_seq_length=STUDENT_MAX_LEN)
    pooling = st_models.Pooling(STUDENT_DIM, pooling_mode="mean")
    torch.manual_seed(seed + 1)
    # Bias-free and linear, like the real student's 2_Dense (768 -> 512, Identity activation).
    dense = st_models.Dense(STUDENT_DIM, EMBED_DIM, bias=False, activation_function=nn.Identity())
    return SentenceTransformer(modules=[transformer, pooling, dense], device="cpu")


# --- data ----------------------------------------------------------------------------------------


def to_model_pixels(images: Sequence[Image.Image]) -> Tensor:
    """uint8 [N, 3, IMAGE_SIZE, IMAGE_SIZE], resized exactly as the saved CLIPImageProcessor does.

    The processor resizes the shortest edge with PIL bicubic and centre-crops; our square images
    need only the resize. Doing it here once, in uint8, keeps the training set small in memory;
    ``check_pixels_match_processor`` proves it equals the processor's output.
    """
    arrays = [
        np.asarray(img.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC))
        for img in images
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def normalise_pixels(pixels: Tensor) -> Tensor:
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels.float() / 255.0 - mean) / std


def check_pixels_match_processor(processor: Any, images: Sequence[Image.Image]) -> float:
    """Largest difference between our training input and the processor's (what inference sees)."""
    ours = normalise_pixels(to_model_pixels(images))
    theirs = processor(images=list(images), return_tensors="pt")["pixel_values"]
    return float((ours - theirs).abs().max())


@dataclass
class ImageSet:
    pixels: Tensor  # uint8 [N, 3, H, W]
    labels: Tensor  # class index [N]
    images: list[Image.Image]


def make_images(seed: int, per_class: int, jpeg_fraction: float, keep_pil: bool) -> ImageSet:
    """Render ``per_class`` images per class; a fraction goes through JPEG, as ingested photos do."""
    every = synthetic.classes()
    rng = np.random.default_rng([seed, 99])
    pils: list[Image.Image] = []
    labels: list[int] = []
    for sample in synthetic.generate(seed, per_class, SOURCE_SIZE):
        image = sample.image
        if rng.random() < jpeg_fraction:
            image = synthetic.jpeg_round_trip(image, quality=int(rng.integers(70, 96)))
        pils.append(image)
        labels.append(every.index(sample.shape_class))
    return ImageSet(to_model_pixels(pils), torch.tensor(labels), pils if keep_pil else [])


# --- training ------------------------------------------------------------------------------------


def multi_positive_clip_loss(a: Tensor, b: Tensor, labels: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric CLIP loss where every pair of the same class is a positive, not only the diagonal.

    With a few dozen classes a batch holds many images of one class; treating them as negatives (as
    plain CLIP does) would push apart what should be together.
    """
    logits = logit_scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    a_to_b = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
    b_to_a = -(target * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return (a_to_b + b_to_a) / 2


def same_class_loss(x: Tensor, labels: Tensor, scale: float = 10.0) -> Tensor:
    """Supervised contrastive loss among images: each image's other same-class images are positives.

    The CLIP loss only ties images to captions; this also pulls images of a class together, which is
    what example-image queries ("find images like this one") rely on.
    """
    n = F.normalize(x, dim=-1)
    self_mask = torch.eye(x.shape[0], dtype=torch.bool)
    logits = (scale * n @ n.T).masked_fill(self_mask, float("-inf"))
    same = ((labels[:, None] == labels[None, :]) & ~self_mask).float()
    has_positive = same.sum(dim=1) > 0
    target = same[has_positive] / same[has_positive].sum(dim=1, keepdim=True)
    log_probs = logits[has_positive].log_softmax(dim=1).masked_fill(self_mask[has_positive], 0.0)
    return -(target * log_probs).sum(dim=1).mean()


def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over 5% of the steps, then cosine decay to 5% of the peak."""
    warm = max(1, total // 20)
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * progress)))


def augment(pixels: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flips: every class here is still itself in a mirror."""
    flip = torch.rand(pixels.shape[0], generator=generator) < 0.5
    out = pixels.clone()
    out[flip] = out[flip].flip(-1)
    return out


def image_embeddings(clip: Any, pixels: Tensor, batch: int = 256) -> Tensor:
    clip.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, pixels.shape[0], batch):
            x = normalise_pixels(pixels[i : i + batch])
            outs.append(clip.visual_projection(clip.vision_model(pixel_values=x).pooler_output))
    return torch.cat(outs)


def train_clip(clip: Any, tokenizer: Any, train: ImageSet, cfg: RunConfig, seed: int) -> list[float]:
    """Stage 1: image tower and English CLIP text tower, contrastive on image/caption pairs."""
    en = [(ci, text) for ci, text, lang in all_captions(TRAIN_TEMPLATES) if lang == "en"]
    by_class: dict[int, list[int]] = {}
    for i, (ci, _) in enumerate(en):
        by_class.setdefault(ci, []).append(i)
    tokens = tokenizer([text for _, text in en], padding=True, return_tensors="pt")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(clip.parameters(), lr=cfg.clip_lr, weight_decay=0.05)
    losses: list[float] = []
    t0 = time.perf_counter()
    clip.train()
    for step in range(cfg.clip_steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg.clip_steps, cfg.clip_lr)
        idx = torch.randint(0, train.pixels.shape[0], (cfg.clip_batch,), generator=generator)
        labels = train.labels[idx]
        pick = torch.randint(0, 1 << 30, (cfg.clip_batch,), generator=generator)
        caption_idx = torch.tensor(
            [by_class[int(c)][int(p) % len(by_class[int(c)])] for c, p in zip(labels, pick, strict=True)]
        )
        pixels = normalise_pixels(augment(train.pixels[idx], generator))
        image = clip.visual_projection(clip.vision_model(pixel_values=pixels).pooler_output)
        text_out = clip.text_model(
            input_ids=tokens["input_ids"][caption_idx], attention_mask=tokens["attention_mask"][caption_idx]
        )
        text = clip.text_projection(text_out.pooler_output)
        loss = multi_positive_clip_loss(image, text, labels, clip.logit_scale.exp().clamp(max=100.0))
        loss = loss + cfg.image_weight * same_class_loss(image, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clip.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == cfg.clip_steps - 1:
            log(
                f"clip step {step}/{cfg.clip_steps} loss {np.mean(losses[-100:]):.4f} ({time.perf_counter() - t0:.0f}s)"
            )
    clip.eval()
    return losses


def train_student(
    student: Any,
    clip: Any,
    clip_tokenizer: Any,
    train: ImageSet,
    cfg: RunConfig,
    seed: int,
) -> list[float]:
    """Stage 2: distil the multilingual student into the CLIP space.

    Target of a caption in any language: the CLIP text tower's embedding of the English caption with
    the same class, template and (for English) wording. A contrastive term against the frozen image
    embeddings of the caption's class keeps classes apart.
    """
    classes = synthetic.classes()
    items: list[tuple[int, str, str]] = []  # (class, caption, parallel English caption)
    for ci, sc in enumerate(classes):
        for t in TRAIN_TEMPLATES:
            english = synthetic.caption(sc.shape, sc.colour, "en", t, 0)
            for lang in synthetic.LANGUAGES:
                for v in range(synthetic.colour_variants(sc.colour, lang)):
                    text = synthetic.caption(sc.shape, sc.colour, lang, t, v)
                    items.append((ci, text, text if lang == "en" else english))
    with torch.no_grad():
        teacher_tokens = clip_tokenizer([p for _, _, p in items], padding=True, return_tensors="pt")
        teacher = clip.text_projection(clip.text_model(**teacher_tokens).pooler_output)
        frozen_images = image_embeddings(clip, train.pixels)
    student_features = student.tokenize([text for _, text, _ in items])
    labels_all = torch.tensor([ci for ci, _, _ in items])
    by_class: dict[int, Tensor] = {
        ci: torch.nonzero(train.labels == ci).flatten() for ci in range(len(classes))
    }
    logit_scale = clip.logit_scale.exp().clamp(max=100.0).detach()
    generator = torch.Generator().manual_seed(seed + 7)
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.student_lr, weight_decay=0.01)
    losses: list[float] = []
    t0 = time.perf_counter()
    student.train()
    for step in range(cfg.student_steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg.student_steps, cfg.student_lr)
        idx = torch.randint(0, len(items), (cfg.student_batch,), generator=generator)
        labels = labels_all[idx]
        features = {key: value[idx] for key, value in student_features.items()}
        # Trim padding to the longest caption in the batch (the whole set is padded to its longest).
        width = int(features["attention_mask"].sum(dim=1).max())
        features = {key: value[:, :width] for key, value in features.items()}
        out = student(features)["sentence_embedding"]
        pick = torch.randint(0, 1 << 30, (cfg.student_batch,), generator=generator)
        image_idx = torch.stack(
            [by_class[int(c)][int(p) % len(by_class[int(c)])] for c, p in zip(labels, pick, strict=True)]
        )
        mse = F.mse_loss(out, teacher[idx])
        contrastive = multi_positive_clip_loss(out, frozen_images[image_idx], labels, logit_scale)
        loss = mse + cfg.contrastive_weight * contrastive
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == cfg.student_steps - 1:
            log(
                f"student step {step}/{cfg.student_steps} loss {np.mean(losses[-100:]):.4f} ({time.perf_counter() - t0:.0f}s)"
            )
    student.eval()
    return losses


# --- saving --------------------------------------------------------------------------------------


def save_image_model(clip: Any, tokenizer: Any, processor: Any, directory: Path) -> None:
    """Save as a Hugging Face CLIP directory, then let sentence-transformers add its module files."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import CLIPProcessor

    directory.mkdir(parents=True, exist_ok=True)
    clip.config._attn_implementation = "sdpa"  # what a plain from_pretrained would pick anyway
    clip.save_pretrained(str(directory))
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(str(directory))
    st = SentenceTransformer(modules=[st_models.CLIPModel(str(directory))], device="cpu")
    st.save(str(directory), create_model_card=False)


def save_text_model(student: Any, directory: Path) -> None:
    student.save(str(directory), create_model_card=False)


# --- evaluation ----------------------------------------------------------------------------------


def top1(
    queries: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray
) -> float:
    """Fraction of queries whose nearest gallery item (cosine) has the query's class."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    nearest = (q @ g.T).argmax(axis=1)
    return float((gallery_labels[nearest] == query_labels).mean())


def retrieval_figures(
    encode_text: Any, image_vectors: np.ndarray, image_labels: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per language: text->image top-1 over the held-out images, all templates and the held-out one.

    Each caption is a query; the gallery is every held-out image (several per class); a query is
    right when its nearest image shows the caption's shape in the caption's colour.
    """
    figures: dict[str, dict[str, float]] = {}
    classes = synthetic.classes()
    for lang in synthetic.LANGUAGES:
        texts: list[str] = []
        labels: list[int] = []
        templates: list[int] = []
        for ci, sc in enumerate(classes):
            for t in range(synthetic.TEMPLATE_COUNT):
                for v in range(synthetic.colour_variants(sc.colour, lang)):
                    texts.append(synthetic.caption(sc.shape, sc.colour, lang, t, v))
                    labels.append(ci)
                    templates.append(t)
        vectors = np.asarray(encode_text(texts), dtype=np.float64)
        label_arr = np.array(labels)
        held = np.array(templates) == synthetic.HELD_OUT_TEMPLATE
        figures[lang] = {
            "text_to_image_top1": top1(vectors, label_arr, image_vectors, image_labels),
            "text_to_image_top1_held_out_template": top1(
                vectors[held], label_arr[held], image_vectors, image_labels
            ),
            "queries": float(len(texts)),
        }
    return figures


def image_to_image_top1(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Example-image queries: each held-out image's nearest other held-out image has its class."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    return float((labels[sims.argmax(axis=1)] == labels).mean())


def evaluate(out: Path, held_out: ImageSet) -> dict[str, Any]:
    """Reload both saved directories the way users load them and measure retrieval on held-out data."""
    from sentence_transformers import SentenceTransformer

    image_model = SentenceTransformer(str(out / "image"), device="cpu")
    text_model = SentenceTransformer(str(out / "text"), device="cpu")
    image_vectors = image_model.encode(held_out.images, batch_size=64, convert_to_numpy=True)
    labels = held_out.labels.numpy()
    figures: dict[str, Any] = {
        "held_out_images": len(held_out.images),
        "student": retrieval_figures(
            lambda texts: text_model.encode(texts, batch_size=256, convert_to_numpy=True),
            image_vectors,
            labels,
        ),
        "clip_text_tower_en": retrieval_figures(
            lambda texts: image_model.encode(texts, batch_size=256, convert_to_numpy=True),
            image_vectors,
            labels,
        )["en"],
        "image_to_image_top1": image_to_image_top1(image_vectors, labels),
    }
    return figures


# --- main ----------------------------------------------------------------------------------------


def set_determinism(seed: int, threads: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "models" / "tiny-clip", help="output directory")
    parser.add_argument("--quick", action="store_true", help="a few steps on a few images (for tests)")
    parser.add_argument(
        "--untrained", action="store_true", help="write same-shape models with random weights, no training"
    )
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation and batch order")
    # One thread by default: results then do not depend on the core count, and on a shared 2-core
    # machine two OpenMP threads competing with other processes ran 3-7 times slower than one.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import sentence_transformers
    import transformers

    args = parse_args(argv)
    started = time.perf_counter()
    set_determinism(args.seed, args.threads)
    cfg = QUICK if args.quick else FULL
    out: Path = args.out
    image_dir, text_dir = out / "image", out / "text"
    for directory in (image_dir, text_dir):  # stale files from an older layout must not survive
        if directory.exists():
            shutil.rmtree(directory)
    timings: dict[str, float] = {}

    clip_tokenizer = build_clip_tokenizer(image_dir)
    processor = build_image_processor()
    clip = build_clip(
        len(clip_tokenizer),
        clip_tokenizer.convert_tokens_to_ids("<|startoftext|>"),
        clip_tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        args.seed,
    )
    student = build_student(text_dir, args.seed + 100)

    clip_losses: list[float] = []
    student_losses: list[float] = []
    if not args.untrained:
        t0 = time.perf_counter()
        train = make_images(TRAIN_SEED, cfg.train_per_class, cfg.jpeg_fraction, keep_pil=False)
        timings["data_s"] = time.perf_counter() - t0
        log(f"{train.pixels.shape[0]} training images ({timings['data_s']:.1f}s)")
        sample = [s.image for s in synthetic.generate(TRAIN_SEED, 1, SOURCE_SIZE)][:8]
        pixel_gap = check_pixels_match_processor(processor, sample)
        if pixel_gap > 1e-5:
            raise SystemExit(f"training pixels differ from CLIPImageProcessor's by {pixel_gap}")
        t0 = time.perf_counter()
        clip_losses = train_clip(clip, clip_tokenizer, train, cfg, args.seed)
        timings["clip_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        student_losses = train_student(student, clip, clip_tokenizer, train, cfg, args.seed)
        timings["student_s"] = time.perf_counter() - t0

    save_image_model(clip, clip_tokenizer, processor, image_dir)
    save_text_model(student, text_dir)
    timings["total_before_eval_s"] = time.perf_counter() - started

    metrics: dict[str, Any] = {
        "mode": "untrained" if args.untrained else ("quick" if args.quick else "full"),
        "seed": args.seed,
        "threads": args.threads,
        "run_config": asdict(cfg),
        "architecture": {
            "embedding_dim": EMBED_DIM,
            "image": {
                "image_size": IMAGE_SIZE,
                "patch_size": PATCH_SIZE,
                "hidden": VISION_HIDDEN,
                "layers": VISION_LAYERS,
                "heads": VISION_HEADS,
                "parameters": sum(p.numel() for p in clip.parameters()),
            },
            "text": {
                "dim": STUDENT_DIM,
                "layers": STUDENT_LAYERS,
                "heads": STUDENT_HEADS,
                "ffn": STUDENT_FFN,
                "max_seq_length": STUDENT_MAX_LEN,
                "vocab_size": len(wordpiece_vocab()),
                "parameters": sum(p.numel() for p in student.parameters()),
            },
        },
        "final_loss": {
            "clip": float(np.mean(clip_losses[-50:])) if clip_losses else None,
            "student": float(np.mean(student_losses[-50:])) if student_losses else None,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "numpy": np.__version__,
            "pillow": PIL.__version__,
        },
    }
    if not args.no_eval:
        t0 = time.perf_counter()
        held_out = make_images(HELD_OUT_SEED, cfg.held_out_per_class, cfg.jpeg_fraction, keep_pil=True)
        metrics["held_out"] = evaluate(out, held_out)
        timings["eval_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started
    metrics["timings"] = {k: round(v, 2) for k, v in timings.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    log(json.dumps({"timings": metrics["timings"], "held_out": metrics.get("held_out")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
