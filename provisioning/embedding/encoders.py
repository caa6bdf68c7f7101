"""Local encoders: models run on the ingest host by sentence-transformers.

Images are embedded on the host (the seed's ``clip-ViT-B-32``), not in Elasticsearch, because ML
nodes run text models only. An :class:`Encoder` wraps one loaded ``SentenceTransformer`` and adds what
streaming ingest needs from it:

- the model's input size, so the decoder can ask libjpeg for the smallest DCT scale that is still at
  least that size (``Image.draft``) instead of decoding 24 megapixels to throw most of them away;
- preprocessing split from the forward pass: :meth:`Encoder.prepare` resizes, crops and normalises
  one image exactly as the model's CLIP image processor does, and is thread-safe, so decode workers
  run it in parallel while the forward pass runs on the caller's thread (sentence-transformers'
  ``encode`` would do it serially inside the batch, on the thread the model needs);
- device selection (``auto | cpu | cuda``) and counters of what was encoded, which the ingest report
  and the resume tests read.

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

from provisioning.embedding.hub import (
    HUB_ENDPOINT,
    hub_is_cached,
    hub_offline_requested,
    hub_repo_id,
    probe_endpoint,
)
from provisioning.errors import ProvisionError
from provisioning.stackfile.schema import EncoderSpec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
# What :meth:`Encoder.prepare` returns: one image as model input, (3, H, W) float32.
Prepared = np.ndarray[Any, np.dtype[np.float32]]


class EncoderError(ProvisionError):
    """An encoder that cannot be loaded or run (missing directory, device, hub, wrong model kind)."""


class HubUnavailableError(EncoderError):
    """A hub source whose model cannot be had: the hub is unreachable or offline and nothing is cached."""


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
    """One loaded sentence-transformers model, ready to embed images (CLIP) or text.

    :meth:`prepare` may be called from any number of threads; :meth:`encode_prepared`,
    :meth:`encode_images` and :meth:`encode_texts` from one thread at a time (torch parallelises
    inside the forward pass; two concurrent passes would only fight for the same cores).
    """

    def __init__(
        self,
        name: str,
        model: SentenceTransformer,
        *,
        device: str,
        batch_size: int,
        normalize: bool,
        source: str,
    ) -> None:
        self.name = name
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.source = source
        self._clip = _clip_module(model)
        self._processor: Any = None
        self.preprocessing: ImagePreprocessing | None = None
        if self._clip is not None:
            self._processor = self._clip.processor.image_processor
            self.preprocessing = ImagePreprocessing.from_processor(self._processor)
        # Counters (written by the encoding thread only): what this encoder has embedded so far.
        self.images_encoded = 0
        self.texts_encoded = 0
        self.batches_encoded = 0
        self.encode_seconds = 0.0

    def __repr__(self) -> str:
        return f"Encoder({self.name!r}, source={self.source!r}, device={self.device!r})"

    @property
    def supports_images(self) -> bool:
        """Whether the model has an image tower (a CLIP module)."""
        return self._clip is not None

    @property
    def dims(self) -> int | None:
        """Length of the vectors it returns, when the model says."""
        if self._clip is not None:
            return int(self._clip.model.config.projection_dim)
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

    def _need_images(self) -> None:
        if self._clip is None:
            raise EncoderError(
                f"encoder '{self.name}' ({self.source}) cannot embed images: its first module is "
                f"{type(self.model[0]).__name__}, not a CLIP model"
            )

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
        """One forward pass over a (n, 3, H, W) batch, through every module of the model.

        This is what ``SentenceTransformer.encode`` does after its processor step: the same modules
        in order (the CLIP towers and projection, then e.g. a Normalize module), in inference mode.
        """
        self._need_images()
        import torch

        started = time.perf_counter()
        tensor = torch.from_numpy(pixels)
        if self.device != "cpu":
            tensor = tensor.to(self.device, non_blocking=True)
        features: dict[str, Any] = {"pixel_values": tensor, "image_text_info": [0] * len(pixels)}
        try:
            with torch.inference_mode():
                embeddings = self.model.forward(features)["sentence_embedding"]
                if self.normalize:
                    embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
                result = embeddings.float().cpu().numpy()
        except RuntimeError as exc:  # torch reports shape, device and memory failures as RuntimeError
            raise EncoderError(
                f"encoder '{self.name}' failed on a batch of {len(pixels)} images on {self.device}: {exc}"
            ) from exc
        self.images_encoded += len(pixels)
        self.batches_encoded += 1
        self.encode_seconds += time.perf_counter() - started
        return np.asarray(result, dtype=np.float32)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embeddings of already decoded images (e.g. a query image)."""
        return self.encode_prepared([self.prepare(image) for image in images])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embeddings of texts, through the model's text tower or text modules."""
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
) -> Encoder:
    """Load the encoder ``name`` declared by ``spec``; relative paths are relative to ``base_dir``.

    ``batch_size`` overrides the spec's (an ingest job may set its own). ``hub_timeout`` bounds the
    check that the hub answers before a hub source is fetched.
    """
    device = resolve_device(spec.device)
    size = batch_size or spec.batch_size
    if spec.source.path is not None:
        directory = Path(spec.source.path).expanduser()
        directory = directory if directory.is_absolute() else base_dir / directory
        model = _load_directory(name, directory, device)
        return Encoder(
            name, model, device=device, batch_size=size, normalize=spec.normalize, source=str(directory)
        )
    assert spec.source.hub is not None  # SourceSpec guarantees exactly one of path and hub
    model = _load_hub(name, spec.source.hub, spec.source.revision, device, hub_timeout)
    return Encoder(
        name, model, device=device, batch_size=size, normalize=spec.normalize, source=f"hub:{spec.source.hub}"
    )


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
