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
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from provisioning.embedding.errors import EncoderError
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.embedding.preprocessing import ImagePreprocessing, Prepared
from provisioning.embedding.runtimes import ImageBackend, TorchBackend

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from provisioning.embedding.quality_gate import GateVerdict

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]


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
