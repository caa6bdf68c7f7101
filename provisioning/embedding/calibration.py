"""Images to calibrate and check converted encoders on: the stack's own, or generated ones.

Two uses, kept apart on purpose:

- the **quality gate** (:mod:`provisioning.embedding.quality_gate`) compares a converted encoder
  with torch fp32 on the images the encoder will really see: the files of the stack's ingest jobs
  that use it (the first ones in scan order), or a folder named by ``calibration.path``; when there
  are too few, generated images make up the rest;
- **int8 calibration** (OpenVINO's post-training quantisation measures activation ranges) runs on
  :func:`generated_images` only, so that the converted artifact depends on the model and the recipe,
  never on the photo collection (it is cached by the encoder's fingerprint, which does not name the
  photos), and the gate measures it on images it was not calibrated on.

Generated images are photo-like (smooth colour fields, a few filled shapes, sensor-like noise),
deterministic for a seed, and made with Pillow and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

if TYPE_CHECKING:
    from provisioning.stackfile.stack import Stack

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
GENERATED_SIZE = (320, 240)  # (width, height): larger than any CLIP input, cheap to make


def generated_image(seed: int, size: tuple[int, int] = GENERATED_SIZE) -> Image.Image:
    """One photo-like RGB image, the same for the same ``seed`` and ``size`` on every machine."""
    rng = np.random.default_rng(seed)
    width, height = size
    colours = rng.uniform(0, 255, size=(4, 5, 3)).astype(np.uint8)
    image = Image.fromarray(colours, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = int(rng.integers(-width // 4, width)), int(rng.integers(-height // 4, height))
        x1 = x0 + int(rng.integers(width // 10 + 1, width // 2 + 2))
        y1 = y0 + int(rng.integers(height // 10 + 1, height // 2 + 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    pixels = np.asarray(image, dtype=np.int16)
    noise = rng.integers(-12, 13, size=pixels.shape, dtype=np.int16)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def generated_images(count: int, seed: int = 0, size: tuple[int, int] = GENERATED_SIZE) -> list[Image.Image]:
    """``count`` photo-like images from seeds ``seed``, ``seed + 1``, ..."""
    return [generated_image(seed + i, size) for i in range(count)]


@dataclass(frozen=True)
class CalibrationSet:
    """Image files for the quality gate and what they are (for reports and refusals).

    ``files`` are tried in order; the gate uses as many as decode, up to ``wanted``, and generates
    the rest. ``description`` says where the files come from (``ingest job 'photos'``).
    """

    files: tuple[Path, ...] = ()
    description: str = "generated images"
    wanted: int = 64
    generated_seed: int = 7_000  # the gate's generated images never overlap int8 calibration's (seed 0)


def folder_calibration(folder: Path, wanted: int) -> CalibrationSet:
    """The first image files under ``folder`` (sorted walk), for ``calibration.path``."""
    files: list[Path] = []
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                files.append(path)
                if len(files) >= 2 * wanted:  # room for files that do not decode
                    break
    return CalibrationSet(tuple(files), f"images under {folder}", wanted)


def stack_calibration(stack: Stack, encoder: str) -> CalibrationSet:
    """The quality gate's images for ``encoder`` of ``stack``: ``calibration.path`` when set, else the
    first files (scan order) of the ingest jobs that use the encoder, else none (all generated)."""
    spec = stack.spec.encoders[encoder]
    wanted = spec.calibration.images
    if spec.calibration.path is not None:
        return folder_calibration(stack.resolve(spec.calibration.path), wanted)
    from provisioning.image_ingest.scan import ScanProblem, scan

    files: list[Path] = []
    jobs: list[str] = []
    problems: list[ScanProblem] = []
    for name, job in stack.spec.ingest.items():
        if job.encoder != encoder or len(files) >= 2 * wanted:
            continue
        root = stack.resolve(job.source.path)
        if not root.is_dir():
            continue
        jobs.append(name)
        for found in scan(
            root,
            job.source.include,
            job.source.exclude,
            follow_symlinks=job.source.follow_symlinks,
            problems=problems,
        ):
            files.append(found.path)
            if len(files) >= 2 * wanted:
                break
    if not jobs:
        return CalibrationSet((), "generated images (no ingest job uses this encoder)", wanted)
    names = ", ".join(f"'{name}'" for name in jobs)
    return CalibrationSet(tuple(files), f"images of ingest job{'s' if len(jobs) > 1 else ''} {names}", wanted)
