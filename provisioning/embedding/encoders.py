"""Local encoders: CLIP image models run on the ingest host, by torch, ONNX Runtime or OpenVINO.

Images are embedded on the host (the seed's ``clip-ViT-B-32``), not in Elasticsearch, because ML
nodes run text models only. An :class:`Encoder` wraps one forward pass (a backend of
:mod:`.runtimes`) and adds what streaming ingest needs from it:

- the model's input size, so the decoder can ask libjpeg for the smallest DCT scale that is still at
  least that size (``Image.draft``) instead of decoding 24 megapixels to throw most of them away;
- preprocessing split from the forward pass: :meth:`Encoder.prepare` resizes, crops and normalises
  one image exactly as the model's CLIP image processor does, and is thread-safe, so decode workers
  run it in parallel while the forward pass runs on the caller's thread (sentence-transformers'
  ``encode`` would do it serially inside the batch, on the thread the model needs);
- device selection (``auto | cpu | cuda``) and counters of what was encoded, which the ingest report
  and the resume tests read;
- its :class:`~provisioning.embedding.fingerprint.EncoderFingerprint` (source content, runtime,
  precision, normalisation), which ingest records with the vectors it writes.

Runtimes (``runtime`` in the stack file): ``torch`` runs the sentence-transformers model as trained;
``onnx`` and ``openvino`` run a model converted from the same source (:mod:`.conversion`, cached by
fingerprint), in ``fp32`` or ``int8``, and only after the quality gate (:mod:`.quality_gate`) has
found it close enough to torch fp32 on calibration images; a refusal is a
:class:`~provisioning.embedding.quality_gate.QualityGateError` with the figures. While it is
converted and gated the torch model is loaded too; it is dropped before the encoder is returned.

Hub sources fail fast. A Hugging Face hub lookup that cannot reach the hub hangs for more than a
minute before failing, so loading from ``source.hub`` first checks, in at most a few seconds, whether
the hub's endpoint answers at all (unless ``HF_HUB_OFFLINE`` already says it must not be asked). If it
does not, a cached copy is loaded offline; with none, the error says to set ``source.path``.

torch and sentence-transformers are imported when a model is loaded, not when this module is, so
commands that only read a stack stay fast.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from provisioning.embedding.calibration import CalibrationSet
from provisioning.embedding.errors import EncoderError, HubUnavailableError
from provisioning.embedding.fingerprint import EncoderFingerprint, hub_source, source_digest
from provisioning.embedding.hub import (
    HUB_ENDPOINT,
    cached_snapshot,
    hub_is_cached,
    hub_offline_requested,
    hub_repo_id,
    probe_endpoint,
)
from provisioning.embedding.runtimes import ImageBackend, OnnxBackend, OpenVinoBackend, TorchBackend
from provisioning.stackfile.schema import EncoderSpec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from provisioning.embedding.conversion import EncoderCache
    from provisioning.embedding.quality_gate import GateVerdict
    from provisioning.stackfile.stack import Stack

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
# What :meth:`Encoder.prepare` returns: one image as model input, (3, H, W) float32.
Prepared = np.ndarray[Any, np.dtype[np.float32]]


__all__ = [
    "Encoder",
    "EncoderError",
    "HubUnavailableError",
    "ImagePreprocessing",
    "Prepared",
    "declared_fingerprint",
    "load_encoder",
    "load_stack_encoder",
    "resolve_device",
]


# -- device ---------------------------------------------------------------------------------------


def resolve_device(requested: Device) -> str:
    """The torch device for ``device: auto|cpu|cuda``; ``cuda`` without a usable GPU is an error.

    ``auto`` takes CUDA, then Apple's MPS, then the CPU: the first that this torch build can use.
    """
    if requested == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        raise EncoderError(
            f"device: cuda, but no CUDA device is usable here (torch {torch.__version__}, {built}); "
            "use device: auto (which falls back to the CPU) or device: cpu"
        )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


# -- preprocessing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePreprocessing:
    """CLIP image preprocessing (resize, centre crop, rescale, normalise), read from the processor.

    It reproduces ``transformers.CLIPImageProcessor`` (same output size arithmetic, same PIL
    resampling filter, same crop offsets) on one image, in numpy and PIL calls that release the GIL,
    so that decode threads can run it in parallel. :meth:`from_processor` returns None for a
    configuration it does not reproduce exactly; the encoder then calls the processor itself.
    """

    shortest_edge: int | None  # resize so the short side has this length (aspect kept)
    resize_to: tuple[int, int] | None  # or resize to exactly (height, width)
    crop: tuple[int, int] | None  # centre crop (height, width)
    resample: int
    rescale_factor: float | None
    mean: np.ndarray[Any, np.dtype[np.float32]] | None
    std: np.ndarray[Any, np.dtype[np.float32]] | None

    @classmethod
    def from_processor(cls, processor: Any) -> ImagePreprocessing | None:
        """The preprocessing of a CLIP-style image processor, or None if it does more than this does."""
        if type(processor).__name__ not in {"CLIPImageProcessor", "CLIPImageProcessorFast"}:
            return None
        size = dict(getattr(processor, "size", None) or {})
        shortest: int | None = None
        resize_to: tuple[int, int] | None = None
        if getattr(processor, "do_resize", False):
            if set(size) == {"shortest_edge"}:
                shortest = int(size["shortest_edge"])
            elif set(size) == {"height", "width"}:
                resize_to = (int(size["height"]), int(size["width"]))
            else:
                return None
        crop: tuple[int, int] | None = None
        if getattr(processor, "do_center_crop", False):
            crop_size = dict(getattr(processor, "crop_size", None) or {})
            if set(crop_size) != {"height", "width"}:
                return None
            crop = (int(crop_size["height"]), int(crop_size["width"]))
            smallest = shortest if shortest is not None else min(resize_to) if resize_to else None
            if smallest is None or max(crop) > smallest:
                return None  # the processor would pad; leave that to it
        rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else None
        mean = std = None
        if getattr(processor, "do_normalize", False):
            mean = np.asarray(processor.image_mean, dtype=np.float32).reshape(3, 1, 1)
            std = np.asarray(processor.image_std, dtype=np.float32).reshape(3, 1, 1)
            if mean.size != 3 or std.size != 3:
                return None
        resample = int(getattr(processor, "resample", Image.Resampling.BICUBIC))
        return cls(shortest, resize_to, crop, resample, rescale, mean, std)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImagePreprocessing | None:
        """The preprocessing a ``preprocessor_config.json`` describes, read without transformers.

        Missing keys take ``CLIPImageProcessor``'s defaults, and integer sizes are read as transformers
        reads them (``size: 224`` is the shortest edge, ``crop_size: 224`` a square). None when the file
        is not a CLIP image processor's (its own processor class must be used then).
        """
        kind = config.get("image_processor_type") or config.get("feature_extractor_type")
        if kind not in {"CLIPImageProcessor", "CLIPImageProcessorFast", "CLIPFeatureExtractor"}:
            return None
        size = config.get("size", {"shortest_edge": 224})
        crop = config.get("crop_size", {"height": 224, "width": 224})
        settings = {
            "do_resize": config.get("do_resize", True),
            "size": {"shortest_edge": size} if isinstance(size, int) else size,
            "do_center_crop": config.get("do_center_crop", True),
            "crop_size": {"height": crop, "width": crop} if isinstance(crop, int) else crop,
            "do_rescale": config.get("do_rescale", True),
            "rescale_factor": config.get("rescale_factor", 1 / 255),
            "do_normalize": config.get("do_normalize", True),
            "image_mean": config.get("image_mean", CLIP_MEAN),
            "image_std": config.get("image_std", CLIP_STD),
            "resample": config.get("resample", int(Image.Resampling.BICUBIC)),
        }
        if not isinstance(settings["size"], dict) or not isinstance(settings["crop_size"], dict):
            return None
        processor = type("CLIPImageProcessor", (), settings)()
        return cls.from_processor(processor)

    @property
    def input_size(self) -> int:
        """The smallest side an image must have for this preprocessing not to upscale it."""
        if self.shortest_edge is not None:
            return self.shortest_edge
        if self.resize_to is not None:
            return max(self.resize_to)
        return max(self.crop) if self.crop else 0

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the resize step; the arithmetic of transformers' resize helper."""
        if self.resize_to is not None:
            return self.resize_to[1], self.resize_to[0]
        if self.shortest_edge is None:
            return width, height
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def __call__(self, image: Image.Image) -> np.ndarray[Any, np.dtype[np.float32]]:
        """One RGB image as a (3, H, W) float32 array, ready to be stacked into ``pixel_values``."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.crop is not None and self.shortest_edge is not None:
            image = _trim_extreme(image, MAX_ASPECT)
        width, height = self.output_size(*image.size)
        if (width, height) != image.size:
            image = image.resize((width, height), resample=self.resample, reducing_gap=None)
        if self.crop is not None:
            crop_h, crop_w = self.crop
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            image = image.crop((left, top, left + crop_w, top + crop_h))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
        if self.rescale_factor is not None:
            pixels = pixels * np.float32(self.rescale_factor)
        if self.mean is not None and self.std is not None:
            pixels = (pixels - self.mean) / self.std
        return np.ascontiguousarray(pixels, dtype=np.float32)


# CLIPImageProcessor's defaults (OPENAI_CLIP_MEAN / OPENAI_CLIP_STD in transformers).
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
MAX_ASPECT = 4.0  # beyond this ratio of long to short side, the middle is cut out before resizing


def _trim_extreme(image: Image.Image, max_aspect: float) -> Image.Image:
    """The centre of a very long image, at most ``max_aspect`` times as long as it is wide.

    Resizing a 1x10000 strip so that its short side becomes 224 pixels would make a 2-gigapixel
    image, of which the centre crop keeps 224x224. Cutting the long side first keeps the result (the
    centre is all the crop ever sees) without the blow-up; up to ``max_aspect`` nothing changes, so
    ordinary photos get exactly the processor's output.
    """
    width, height = image.size
    short, long = min(width, height), max(width, height)
    if long <= max_aspect * short:
        return image
    keep = int(max_aspect * short)
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))


# -- the encoder ----------------------------------------------------------------------------------


class Encoder:
    """One loaded image encoder: preprocessing, a runtime's forward pass, and its fingerprint.

    :meth:`prepare` may be called from any number of threads; :meth:`encode_prepared`,
    :meth:`encode_images` and :meth:`encode_texts` from one thread at a time (each runtime
    parallelises inside the forward pass; two concurrent passes would only fight for the same cores).

    ``model`` is the sentence-transformers model for the torch runtime (None for converted ones,
    which keep only the image tower's converted graph); ``verdict`` is the quality gate's, for
    converted ones.
    """

    def __init__(
        self,
        name: str,
        model: SentenceTransformer | None,
        *,
        device: str,
        batch_size: int,
        normalize: bool,
        source: str,
        backend: ImageBackend | None = None,
        processor: Any = None,
        preprocessing: ImagePreprocessing | None = None,
        dims: int | None = None,
        fingerprint: EncoderFingerprint | None = None,
        verdict: GateVerdict | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.source = source
        self.fingerprint = fingerprint
        self.verdict = verdict
        self._clip = _clip_module(model) if model is not None else None
        self._processor: Any = processor
        self._dims = dims
        if self._clip is not None:
            self._processor = self._clip.processor.image_processor
        self.preprocessing: ImagePreprocessing | None = preprocessing or (
            ImagePreprocessing.from_processor(self._processor) if self._processor is not None else None
        )
        if backend is None and model is not None and self._clip is not None:
            backend = TorchBackend(model, device)
        self.backend = backend
        self.device = backend.device if backend is not None else device
        # Counters (written by the encoding thread only): what this encoder has embedded so far.
        self.images_encoded = 0
        self.texts_encoded = 0
        self.batches_encoded = 0
        self.encode_seconds = 0.0

    def __repr__(self) -> str:
        return f"Encoder({self.name!r}, source={self.source!r}, runtime={self.runtime!r}, device={self.device!r})"

    @property
    def runtime(self) -> str:
        """``torch``, ``onnx`` or ``openvino``."""
        return self.backend.runtime if self.backend is not None else "torch"

    @property
    def precision(self) -> str:
        """``fp32`` or ``int8``."""
        return self.backend.precision if self.backend is not None else "fp32"

    @property
    def supports_images(self) -> bool:
        """Whether the encoder has an image forward pass (a CLIP image tower)."""
        return self.backend is not None and (self.preprocessing is not None or self._processor is not None)

    @property
    def dims(self) -> int | None:
        """Length of the vectors it returns, when the model says."""
        if self._dims is not None:
            return self._dims
        if self._clip is not None:
            return int(self._clip.model.config.projection_dim)
        if self.model is None:
            return None
        dims = self.model.get_sentence_embedding_dimension()
        return int(dims) if dims is not None else None

    @property
    def input_size(self) -> int | None:
        """The side length the model's image input is resized to (224 for ViT-B/32), if known.

        Decoders may shrink an image to no less than this on its shortest side before preparing it:
        preprocessing would shrink it to that anyway.
        """
        if self.preprocessing is not None:
            return self.preprocessing.input_size
        if self._processor is not None:
            size = dict(getattr(self._processor, "size", None) or {})
            values = [int(v) for v in size.values() if isinstance(v, int)]
            return max(values) if values else None
        return None

    def _need_images(self) -> ImageBackend:
        if self.backend is None or (self.preprocessing is None and self._processor is None):
            first = type(self.model[0]).__name__ if self.model is not None and len(self.model) else "nothing"
            raise EncoderError(
                f"encoder '{self.name}' ({self.source}) cannot embed images: its first module is "
                f"{first}, not a CLIP model"
            )
        return self.backend

    def prepare(self, image: Image.Image) -> Prepared:
        """One decoded RGB image as model input (thread-safe; meant for decode workers)."""
        self._need_images()
        if self.preprocessing is not None:
            return self.preprocessing(image)
        pixels = self._processor(images=image, return_tensors="np")["pixel_values"][0]
        return np.ascontiguousarray(pixels, dtype=np.float32)

    def encode_prepared(
        self, items: Sequence[Prepared], batch_size: int | None = None
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embeddings (n, dims) of prepared images, ``batch_size`` (default: the encoder's) at a time."""
        self._need_images()
        size = batch_size or self.batch_size
        out: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            out.append(self.encode_pixels(np.stack(chunk)))
        if not out:
            return np.zeros((0, self.dims or 0), dtype=np.float32)
        return np.concatenate(out)

    def encode_pixels(
        self, pixels: np.ndarray[Any, np.dtype[np.float32]]
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """One forward pass over a (n, 3, H, W) float32 batch: (n, dims) float32, unit length when the
        encoder normalises. Raises EncoderError naming the encoder when the runtime fails."""
        backend = self._need_images()
        started = time.perf_counter()
        try:
            result = backend.run(pixels)
        except EncoderError as exc:
            raise EncoderError(f"encoder '{self.name}': {exc}") from exc
        if self.normalize:
            norms = np.linalg.norm(result, axis=1, keepdims=True)
            result = result / np.maximum(norms, 1e-12)
        self.images_encoded += len(pixels)
        self.batches_encoded += 1
        self.encode_seconds += time.perf_counter() - started
        return np.asarray(result, dtype=np.float32)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embeddings of already decoded images (e.g. a query image)."""
        return self.encode_prepared([self.prepare(image) for image in images])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embeddings of texts, through the model's text tower or text modules (torch runtime only)."""
        if self.model is None:
            raise EncoderError(
                f"encoder '{self.name}' runs a converted image tower ({self.runtime} {self.precision}) and "
                "embeds images only; text is embedded by the stack's text model (or use runtime: torch)"
            )
        started = time.perf_counter()
        try:
            result = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
                show_progress_bar=False,
            )
        except RuntimeError as exc:
            raise EncoderError(f"encoder '{self.name}' failed to embed {len(texts)} texts: {exc}") from exc
        self.texts_encoded += len(texts)
        self.encode_seconds += time.perf_counter() - started
        return np.asarray(result, dtype=np.float32)


def _clip_module(model: SentenceTransformer) -> Any:
    """The model's sentence-transformers CLIPModel module, when that is its first module."""
    from sentence_transformers.models import CLIPModel

    first = model[0] if len(model) else None
    return first if isinstance(first, CLIPModel) else None


# -- loading --------------------------------------------------------------------------------------


def load_encoder(
    name: str,
    spec: EncoderSpec,
    base_dir: Path,
    *,
    batch_size: int | None = None,
    hub_timeout: float = 3.0,
    calibration: CalibrationSet | None = None,
    cache: EncoderCache | None = None,
) -> Encoder:
    """Load the encoder ``name`` declared by ``spec``; relative paths are relative to ``base_dir``.

    ``batch_size`` overrides the spec's (an ingest job may set its own). ``hub_timeout`` bounds the
    check that the hub answers before a hub source is fetched. For ``runtime: onnx | openvino`` the
    converted model comes from ``cache`` (default: the user's cache folder) or is converted into it,
    and the quality gate measures it on ``calibration`` (default: generated images) unless its
    verdict is cached. Raises EncoderError (HubUnavailableError, ConversionError, QualityGateError).
    """
    size = batch_size or spec.batch_size
    if spec.runtime != "torch":
        return _load_converted(name, spec, base_dir, size, hub_timeout, calibration, cache)
    if spec.threads is not None:
        import torch

        torch.set_num_threads(spec.threads)
    device = resolve_device(spec.device)
    if spec.source.path is not None:
        directory = _source_path(name, spec, base_dir)
        model = _load_directory(name, directory, device)
        source_id = source_digest(directory)
        source = str(directory)
    else:
        assert spec.source.hub is not None  # SourceSpec guarantees exactly one of path and hub
        model = _load_hub(name, spec.source.hub, spec.source.revision, device, hub_timeout)
        source_id = hub_source(hub_repo_id(spec.source.hub), spec.source.revision)
        source = f"hub:{spec.source.hub}"
    normalized = spec.normalize or _ends_with_normalize(model)
    fingerprint = EncoderFingerprint.of(source_id, "torch", "fp32", normalized)
    return Encoder(
        name,
        model,
        device=device,
        batch_size=size,
        normalize=spec.normalize,
        source=source,
        fingerprint=fingerprint,
    )


def load_stack_encoder(stack: Stack, name: str, *, batch_size: int | None = None) -> Encoder:
    """The stack's encoder ``name``, gated (when converted) on the stack's own images.

    See :func:`load_encoder`; the quality gate's calibration images come from
    :func:`~provisioning.embedding.calibration.stack_calibration`. KeyError if it is not declared.
    """
    from provisioning.embedding.calibration import stack_calibration

    spec = stack.spec.encoders[name]
    calibration = stack_calibration(stack, name) if spec.runtime != "torch" else None
    return load_encoder(name, spec, stack.base_dir, batch_size=batch_size, calibration=calibration)


def declared_fingerprint(spec: EncoderSpec, base_dir: Path) -> EncoderFingerprint | None:
    """The fingerprint the encoder declared by ``spec`` would have, without loading any model.

    None when it cannot be told here (a missing directory, a hub model that is not cached). Reads the
    model directory (its content hash and whether it normalises); for ``status`` and checks.
    """
    from provisioning.embedding.inspect import ModelDirError, inspect_model_dir

    if spec.source.path is not None:
        directory: Path | None = Path(spec.source.path).expanduser()
        assert directory is not None
        directory = directory if directory.is_absolute() else base_dir / directory
        source_id = source_digest(directory) if directory.is_dir() else None
    else:
        assert spec.source.hub is not None
        repo_id = hub_repo_id(spec.source.hub)
        directory = cached_snapshot(repo_id, spec.source.revision)
        source_id = hub_source(repo_id, spec.source.revision)
    if directory is None or source_id is None:
        return None
    try:
        normalized = inspect_model_dir(directory).normalized
    except ModelDirError:
        return None
    return EncoderFingerprint.of(source_id, spec.runtime, spec.precision, spec.normalize or normalized)


def _source_path(name: str, spec: EncoderSpec, base_dir: Path) -> Path:
    assert spec.source.path is not None
    directory = Path(spec.source.path).expanduser()
    return directory if directory.is_absolute() else base_dir / directory


def _ends_with_normalize(model: SentenceTransformer) -> bool:
    from sentence_transformers.models import Normalize

    return any(isinstance(module, Normalize) for module in list(model)[1:])


def _load_converted(
    name: str,
    spec: EncoderSpec,
    base_dir: Path,
    batch_size: int,
    hub_timeout: float,
    calibration: CalibrationSet | None,
    cache: EncoderCache | None,
) -> Encoder:
    """A converted encoder: fingerprint, cached or fresh conversion, quality gate, then the runtime."""
    import gc

    from provisioning.embedding import conversion, quality_gate
    from provisioning.embedding.inspect import ModelDirError, inspect_model_dir

    if spec.source.path is not None:
        directory = _source_path(name, spec, base_dir)
        if not directory.is_dir():
            raise EncoderError(f"encoder '{name}': model directory not found: {directory}")
        source_id, source = source_digest(directory), str(directory)
    else:
        assert spec.source.hub is not None
        repo_id = hub_repo_id(spec.source.hub)
        directory = _hub_directory(name, repo_id, spec.source.revision, hub_timeout)
        source_id, source = hub_source(repo_id, spec.source.revision), f"hub:{spec.source.hub}"
    try:
        info = inspect_model_dir(directory)
    except ModelDirError as exc:
        raise EncoderError(f"encoder '{name}': {exc}") from exc
    fingerprint = EncoderFingerprint.of(
        source_id, spec.runtime, spec.precision, spec.normalize or info.normalized
    )
    store = cache if cache is not None else conversion.EncoderCache()
    reference: SentenceTransformer | None = None

    def torch_model() -> SentenceTransformer:
        nonlocal reference
        if reference is None:
            reference = _load_directory(name, directory, "cpu")
        return reference

    artifact = store.get_or_convert(name, fingerprint, torch_model)
    backend: ImageBackend
    if spec.runtime == "onnx":
        backend = OnnxBackend(
            artifact.model_file, precision=spec.precision, device=spec.device, threads=spec.threads
        )
    else:
        backend = OpenVinoBackend(artifact.model_file, precision=spec.precision, threads=spec.threads)
    preprocessing, processor = _image_preprocessing(name, directory)
    encoder = Encoder(
        name,
        None,
        device=backend.device,
        batch_size=batch_size,
        normalize=spec.normalize or info.normalized,
        source=source,
        backend=backend,
        processor=processor,
        preprocessing=preprocessing,
        dims=info.dims,
        fingerprint=fingerprint,
    )
    verdict = store.verdict(fingerprint)
    if verdict is None:
        conversion.counters["gate_runs"] += 1
        pixels, description = quality_gate.calibration_pixels(
            calibration or CalibrationSet(description="generated images", wanted=spec.calibration.images),
            encoder.prepare,
            encoder.input_size,
        )
        verdict = quality_gate.judge(
            fingerprint, TorchBackend(torch_model(), "cpu"), backend, pixels, description
        )
        store.store_verdict(fingerprint, verdict)
        log.info(
            "encoders.%s: quality gate %s: %s",
            name,
            "passed" if verdict.passed else "FAILED",
            verdict.figures(),
        )
    else:
        conversion.counters["gate_cache_hits"] += 1
    reference = None
    gc.collect()  # the torch model (hundreds of MB for ViT-B/32) is not needed any more
    if not verdict.passed:
        raise quality_gate.refusal(name, fingerprint, verdict)
    encoder.verdict = verdict
    return encoder


def _image_preprocessing(name: str, directory: Path) -> tuple[ImagePreprocessing | None, Any]:
    """The CLIP image preprocessing of a model directory (the CLIP module's folder of an ST pipeline):
    read from its ``preprocessor_config.json`` (no transformers import, hence no torch, for converted
    encoders), or, for configurations that reads do not reproduce, transformers' processor."""
    import json

    module_dir = directory
    modules_file = directory / "modules.json"
    try:
        if modules_file.is_file():
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
            module_dir = directory / str(modules[0].get("path", ""))
        config_file = module_dir / "preprocessor_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    except (OSError, ValueError, IndexError, AttributeError) as exc:
        raise EncoderError(f"encoder '{name}': cannot read the preprocessing of {module_dir}: {exc}") from exc
    found = ImagePreprocessing.from_config(config) if isinstance(config, dict) and config else None
    if found is not None:
        return found, None
    from transformers import CLIPImageProcessor

    try:
        return None, CLIPImageProcessor.from_pretrained(str(module_dir))
    except (OSError, ValueError) as exc:
        raise EncoderError(f"encoder '{name}': no CLIP image processor in {module_dir}: {exc}") from exc


def _hub_directory(name: str, repo_id: str, revision: str | None, timeout: float) -> Path:
    """The local snapshot of a hub model (fetched through sentence-transformers when not cached)."""
    found = cached_snapshot(repo_id, revision)
    if found is None:
        _load_hub(name, repo_id, revision, "cpu", timeout)
        found = cached_snapshot(repo_id, revision)
    if found is None:
        raise HubUnavailableError(
            f"encoder '{name}': '{repo_id}' was loaded but no snapshot of it is in the Hugging Face cache; "
            f"save it (SentenceTransformer('{repo_id}').save('<dir>')) and set encoders.{name}.source.path"
        )
    return found


def _load_directory(name: str, directory: Path, device: str) -> SentenceTransformer:
    """A local model: a sentence-transformers directory, or a bare Hugging Face CLIP directory."""
    if not directory.is_dir():
        raise EncoderError(f"encoder '{name}': model directory not found: {directory}")
    from sentence_transformers import SentenceTransformer

    try:
        if (directory / "modules.json").is_file():
            return SentenceTransformer(str(directory), device=device, local_files_only=True)
        if (directory / "config.json").is_file() and _is_clip_config(directory / "config.json"):
            from sentence_transformers.models import CLIPModel

            return SentenceTransformer(modules=[CLIPModel(str(directory))], device=device)
    except (OSError, ValueError, KeyError) as exc:  # what transformers raises for unreadable model files
        raise EncoderError(f"encoder '{name}': cannot load the model in {directory}: {exc}") from exc
    raise EncoderError(
        f"encoder '{name}': {directory} is neither a sentence-transformers model (no modules.json) "
        "nor a Hugging Face CLIP model (config.json with model_type clip)"
    )


def _is_clip_config(path: Path) -> bool:
    import json

    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "clip"


def _load_hub(name: str, hub: str, revision: str | None, device: str, timeout: float) -> SentenceTransformer:
    repo_id = hub_repo_id(hub)
    fix = (
        f"save the model where the hub is reachable (SentenceTransformer('{repo_id}').save('<dir>')), "
        f"copy that directory here and declare it as encoders.{name}.source.path instead of source.hub"
    )
    offline = hub_offline_requested()
    why: str | None = "HF_HUB_OFFLINE is set" if offline else None
    if why is None:
        endpoint = os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT
        reason = probe_endpoint(endpoint, timeout)
        if reason is not None:
            why = f"the hub ({endpoint}) cannot be reached: {reason}"
    if why is not None:
        if not hub_is_cached(repo_id, revision):
            raise HubUnavailableError(
                f"encoder '{name}': cannot load '{repo_id}' from the Hugging Face hub: {why}, and the local "
                f"cache holds no copy; {fix}"
            )
        log.warning("encoder '%s': %s; loading %s from the local Hugging Face cache", name, why, repo_id)
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(
            repo_id, revision=revision, device=device, local_files_only=why is not None
        )
    except (OSError, ValueError) as exc:  # huggingface_hub's HTTP and cache errors derive from these
        raise HubUnavailableError(
            f"encoder '{name}': cannot load '{repo_id}' from the hub: {exc}; {fix}"
        ) from exc
