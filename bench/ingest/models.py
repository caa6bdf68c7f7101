"""CLIP models with random weights, saved where sentence-transformers can load them offline.

No weights can be downloaded where this project is developed and benchmarked, so speed is measured
on the full-size architecture with random weights (the arithmetic, hence the cost, is the same) and
tests use a tiny one. Both are written as a Hugging Face CLIP directory (config, weights, image
processor, tokenizer): the same layout as ``openai/clip-vit-base-patch32``, which
``SentenceTransformer(path)`` wraps in its CLIPModel module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _byte_level_vocab() -> dict[str, int]:
    """A minimal CLIP BPE vocabulary: every byte symbol, alone and word-final, plus the specials.

    With no merges every word is spelt out byte by byte, which is enough for a tokenizer that must
    load and run, not understand.
    """
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}


def save_random_clip(
    directory: Path,
    *,
    vision: dict[str, Any] | None = None,
    text: dict[str, Any] | None = None,
    projection_dim: int = 512,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised CLIP model to ``directory`` and return it.

    The directory is in sentence-transformers format (``modules.json`` naming one CLIPModel module
    saved in the root), as ``sentence-transformers/clip-ViT-B-32`` is. ``vision`` and ``text``
    override CLIPVisionConfig / CLIPTextConfig defaults; with neither, the result is the ViT-B/32
    architecture (patch 32, 224 px, 768 wide, 12 layers; projection 512).
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = _byte_level_vocab()
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    text_config = {"vocab_size": len(vocab), "bos_token_id": vocab["<|startoftext|>"]}
    text_config["eos_token_id"] = vocab["<|endoftext|>"]
    text_config["pad_token_id"] = vocab["<|endoftext|>"]
    text_config.update(text or {})
    vision_config = dict(vision or {})
    config = CLIPConfig(  # type: ignore[no-untyped-call]
        text_config=text_config, vision_config=vision_config, projection_dim=projection_dim
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(directory)
    size = config.vision_config.image_size
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    tokenizer = CLIPTokenizer(  # type: ignore[no-untyped-call]
        str(directory / "vocab.json"),
        str(directory / "merges.txt"),
        model_max_length=config.text_config.max_position_embeddings,
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)  # type: ignore[no-untyped-call]
    processor.save_pretrained(directory)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.CLIPModel"}]
    (directory / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    return directory


TINY_VISION = {
    "image_size": 64,
    "patch_size": 16,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}
TINY_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 32,
}
TINY_DIMS = 16


def save_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """A CLIP small enough for unit tests (64 px input, 16-d output), loadable like the real one."""
    return save_random_clip(
        directory, vision=TINY_VISION, text=TINY_TEXT, projection_dim=TINY_DIMS, seed=seed
    )


def save_full_size_clip(directory: Path, seed: int = 0) -> Path:
    """The ViT-B/32 CLIP architecture with random weights: the cost of ``clip-ViT-B-32``."""
    return save_random_clip(directory, seed=seed)
