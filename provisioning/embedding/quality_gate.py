"""The quality gate: a converted or quantised encoder embeds nothing until it matches torch fp32.

Speed without a quality check is not acceptable: dynamic uint8 quantisation has been seen to make
CLIP image embeddings visibly worse. So before an encoder whose runtime is not torch, or whose
precision is not fp32, is used, the same calibration images are embedded by it and by the source
model in torch fp32, and two figures decide:

- **mean cosine** between each image's two vectors: at least :data:`MIN_MEAN_COSINE` (0.99);
- **top-10 neighbour overlap**: for each image, its 10 nearest other images (cosine, exact kNN over
  the calibration set) by the candidate's vectors compared with those by torch's, the shared
  fraction averaged over images: at least :data:`MIN_NEIGHBOUR_OVERLAP` (0.95). Search quality is
  about rankings, and a small uniform drift in cosine can still reorder close neighbours.

The verdict (figures, images, where they came from, pass or fail) is cached with the converted model
under its fingerprint (:mod:`provisioning.embedding.conversion`), so the gate runs once per artifact;
a refusal is cached too and raised again, with the same figures, until the spec changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from provisioning.embedding.calibration import CalibrationSet, generated_images
from provisioning.embedding.errors import EncoderError
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.embedding.runtimes import ImageBackend, Pixels, Vectors
from provisioning.json_types import JsonObject, JsonValue

MIN_MEAN_COSINE = 0.99
MIN_NEIGHBOUR_OVERLAP = 0.95
NEIGHBOURS = 10
GATE_BATCH = 16  # images per forward pass while gating (memory stays small for full-size models)


@dataclass(frozen=True)
class GateVerdict:
    """The gate's figures for one converted encoder, and whether it passed.

    ``mean_cosine``/``min_cosine``: cosine similarity between each image's candidate and torch fp32
    vectors (mean, worst); ``neighbour_overlap``: mean shared fraction of the ``neighbours`` nearest
    images; ``images``: how many were embedded, ``calibration`` says which; ``seconds``: wall time of
    the gate (both encoders).
    """

    digest: str  # the fingerprint digest of the artifact it judged
    runtime: str
    precision: str
    images: int
    calibration: str
    mean_cosine: float
    min_cosine: float
    neighbour_overlap: float
    neighbours: int = NEIGHBOURS
    min_mean_cosine: float = MIN_MEAN_COSINE
    min_neighbour_overlap: float = MIN_NEIGHBOUR_OVERLAP
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (
            self.mean_cosine >= self.min_mean_cosine and self.neighbour_overlap >= self.min_neighbour_overlap
        )

    def figures(self) -> str:
        """``mean cosine 0.9998 (needs >= 0.99), top-10 neighbour overlap 0.989 (needs >= 0.95) on 64 ...``"""
        return (
            f"mean cosine {self.mean_cosine:.4f} (needs >= {self.min_mean_cosine:g}, worst image "
            f"{self.min_cosine:.4f}), top-{self.neighbours} neighbour overlap {self.neighbour_overlap:.3f} "
            f"(needs >= {self.min_neighbour_overlap:g}) on {self.calibration}"
        )

    def to_json(self) -> JsonObject:
        return {
            "digest": self.digest,
            "runtime": self.runtime,
            "precision": self.precision,
            "passed": self.passed,
            "images": self.images,
            "calibration": self.calibration,
            "mean_cosine": round(self.mean_cosine, 6),
            "min_cosine": round(self.min_cosine, 6),
            "neighbour_overlap": round(self.neighbour_overlap, 6),
            "neighbours": self.neighbours,
            "min_mean_cosine": self.min_mean_cosine,
            "min_neighbour_overlap": self.min_neighbour_overlap,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, data: JsonValue) -> GateVerdict:
        """A verdict :meth:`to_json` wrote; ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("a gate verdict is a JSON object")
        try:
            return cls(
                digest=str(data["digest"]),
                runtime=str(data["runtime"]),
                precision=str(data["precision"]),
                images=int(_number(data["images"])),
                calibration=str(data["calibration"]),
                mean_cosine=_number(data["mean_cosine"]),
                min_cosine=_number(data["min_cosine"]),
                neighbour_overlap=_number(data["neighbour_overlap"]),
                neighbours=int(_number(data["neighbours"])),
                min_mean_cosine=_number(data["min_mean_cosine"]),
                min_neighbour_overlap=_number(data["min_neighbour_overlap"]),
                seconds=_number(data.get("seconds", 0.0)),
            )
        except KeyError as exc:
            raise ValueError(f"a gate verdict without {exc}") from exc


def _number(value: JsonValue) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number in a gate verdict, got {value!r}")
    return float(value)


class QualityGateError(EncoderError):
    """A converted encoder refused by the quality gate; ``verdict`` holds the figures."""

    def __init__(self, message: str, verdict: GateVerdict) -> None:
        super().__init__(message)
        self.verdict = verdict


def refusal(name: str, fingerprint: EncoderFingerprint, verdict: GateVerdict) -> QualityGateError:
    """The error for a failed verdict: the figures, and the settings that would get past it."""
    ways = []
    if fingerprint.precision == "int8":
        ways.append(f"precision: fp32 (runtime {fingerprint.runtime} without quantisation)")
        other = "openvino" if fingerprint.runtime == "onnx" else "onnx"
        ways.append(f"runtime: {other} with precision: int8 (another quantiser)")
    else:
        other = "openvino" if fingerprint.runtime == "onnx" else "onnx"
        ways.append(f"runtime: {other}")
    ways.append("runtime: torch (the model as trained)")
    return QualityGateError(
        f"encoder '{name}': {fingerprint.runtime} {fingerprint.precision} does not match torch fp32 closely "
        f"enough to embed anything: {verdict.figures()}. Set encoders.{name} to "
        + ", or ".join(ways)
        + " (the verdict is cached with the converted model; a changed setting is checked afresh)",
        verdict,
    )


def unit(vectors: Vectors) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def neighbour_overlap(reference: Vectors, candidate: Vectors, k: int = NEIGHBOURS) -> float:
    """Mean over rows of |kNN_ref(i) ∩ kNN_cand(i)| / k, excluding each row itself; cosine, exact.

    ``reference`` and ``candidate`` are (n, d) with the same rows in the same order; ``k`` is capped
    at n - 1. Returns 1.0 for fewer than two rows.
    """
    n = len(reference)
    k = min(k, n - 1)
    if k < 1:
        return 1.0
    overlaps = []
    ranked = []
    for vectors in (reference, candidate):
        normed = unit(vectors).astype(np.float64)
        sims = normed @ normed.T
        np.fill_diagonal(sims, -np.inf)
        ranked.append(np.argsort(-sims, axis=1, kind="stable")[:, :k])
    for ours, theirs in zip(ranked[0], ranked[1], strict=True):
        overlaps.append(len(set(ours.tolist()) & set(theirs.tolist())) / k)
    return float(np.mean(overlaps))


def cosines(reference: Vectors, candidate: Vectors) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Row-wise cosine similarity of two (n, d) arrays."""
    return np.asarray(
        (unit(reference).astype(np.float64) * unit(candidate).astype(np.float64)).sum(axis=1),
        dtype=np.float64,
    )


def calibration_pixels(
    calibration: CalibrationSet,
    prepare: Callable[[Image.Image], Pixels],
    input_size: int | None,
) -> tuple[Pixels, str]:
    """The gate's images, decoded as ingest decodes them and prepared: (n, 3, H, W), and a description.

    Files are taken in order until ``calibration.wanted`` decode; generated images make up the rest.
    """
    from provisioning.image_ingest.decode import ImageDecodeError, decode_image, read_file

    prepared: list[Pixels] = []
    for path in calibration.files:
        if len(prepared) >= calibration.wanted:
            break
        try:
            decoded = decode_image(read_file(path), min_size=input_size)
        except ImageDecodeError:
            continue
        prepared.append(prepare(decoded.image))
    own = len(prepared)
    missing = calibration.wanted - own
    if missing > 0:
        prepared.extend(
            prepare(image) for image in generated_images(missing, seed=calibration.generated_seed)
        )
    if own == 0:
        description = f"{len(prepared)} generated images" + (
            ""
            if calibration.description.startswith("generated")
            else f" ({calibration.description} has none)"
        )
    elif missing > 0:
        description = f"{own} {calibration.description} and {missing} generated images"
    else:
        description = f"{own} {calibration.description}"
    return np.stack(prepared).astype(np.float32), description


def _embed(backend: ImageBackend, pixels: Pixels) -> Vectors:
    parts = [backend.run(pixels[start : start + GATE_BATCH]) for start in range(0, len(pixels), GATE_BATCH)]
    return np.concatenate(parts).astype(np.float32)


def judge(
    fingerprint: EncoderFingerprint,
    reference: ImageBackend,
    candidate: ImageBackend,
    pixels: Pixels,
    description: str,
) -> GateVerdict:
    """Embed ``pixels`` with both backends and measure the candidate against the torch fp32 reference."""
    started = time.perf_counter()
    ours = _embed(reference, pixels)
    theirs = _embed(candidate, pixels)
    if ours.shape != theirs.shape:
        raise EncoderError(
            f"the converted model returns vectors of shape {theirs.shape[1:]}, torch {ours.shape[1:]}: "
            "the conversion is broken; delete its cache folder and load the encoder again"
        )
    found = cosines(ours, theirs)
    finite = bool(np.isfinite(theirs).all())
    # Rounded as stored (to_json), so a verdict read back from the cache equals the one made here.
    return GateVerdict(
        digest=fingerprint.digest,
        runtime=fingerprint.runtime,
        precision=fingerprint.precision,
        images=len(pixels),
        calibration=description,
        mean_cosine=round(float(found.mean()), 6) if finite else 0.0,
        min_cosine=round(float(found.min()), 6) if finite else 0.0,
        neighbour_overlap=round(neighbour_overlap(ours, theirs), 6) if finite else 0.0,
        seconds=round(time.perf_counter() - started, 3),
    )
