"""The forward pass of an image encoder, in each runtime: torch, ONNX Runtime, OpenVINO.

A backend takes one batch of prepared images, ``pixel_values`` of shape (n, 3, H, W) float32 (what
:meth:`provisioning.embedding.encoders.Encoder.prepare` makes), and returns the image embeddings
(n, dims) float32 *before* any normalisation the stack asks for (the encoder applies that, the same
way for every runtime). Backends are used from one thread at a time; each parallelises inside the
forward pass.

- :class:`TorchBackend` runs the sentence-transformers modules as ``SentenceTransformer.encode`` does.
- :class:`OnnxBackend` runs an exported model with ONNX Runtime: the CUDA execution provider when
  ``device`` is ``auto`` or ``cuda`` and onnxruntime-gpu provides it, else the CPU provider. Its
  worker threads do not spin while idle, so decode threads keep the cores between batches.
- :class:`OpenVinoBackend` runs an OpenVINO IR on the CPU, with fp32 inference precision pinned:
  on CPUs with bf16 or AMX, OpenVINO's default would silently compute in bf16.

Threads: ``threads`` (the encoder's ``threads`` setting) bounds the forward pass's threads; None
leaves each runtime's default (one per core).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from provisioning.embedding.errors import EncoderError
from provisioning.stackfile.schema import Precision, Runtime

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Pixels = np.ndarray[Any, np.dtype[np.float32]]
Vectors = np.ndarray[Any, np.dtype[np.float32]]
DeviceRequest = Literal["auto", "cpu", "cuda"]

ONNX_INPUT = "pixel_values"
ONNX_OUTPUT = "image_embeds"


class ImageBackend(Protocol):
    """One runtime's forward pass over prepared images."""

    runtime: Runtime
    precision: Precision
    device: str  # where it runs: "cpu", "cuda", "mps"

    def run(self, pixels: Pixels) -> Vectors:
        """Embeddings (n, dims) float32 of a (n, 3, H, W) float32 batch; raises EncoderError."""
        ...


class TorchBackend:
    """The sentence-transformers model's modules, in inference mode, on ``device``.

    On the CPU a batch is split into one shard per torch thread, each run on a thread of its own
    with one intra-op thread: the images of a batch are independent, and whole single-threaded
    forward passes side by side waste no time at the synchronisation points of a parallel one
    (where a thread preempted by a decode worker holds up the others). Measured on 2 cores with
    ViT-B/32: 119 core-ms per image against 145 for one two-threaded pass; the same vectors.
    """

    runtime: Runtime = "torch"
    precision: Precision = "fp32"
    min_shard = 4  # images per shard below which a batch runs as one pass

    def __init__(self, model: SentenceTransformer, device: str) -> None:
        self.model = model
        self.device = device
        self._pool: ThreadPoolExecutor | None = None

    def run(self, pixels: Pixels) -> Vectors:
        """What ``SentenceTransformer.encode`` does after its processor step: the same modules in
        order (the CLIP towers and projection, then e.g. a Normalize module)."""
        import torch

        threads = torch.get_num_threads()
        shards = min(threads, len(pixels) // self.min_shard)
        if self.device != "cpu" or shards < 2:
            return self._forward(pixels)
        if self._pool is None or self._pool._max_workers != shards:
            self._pool = ThreadPoolExecutor(max_workers=shards, thread_name_prefix="torch-shard")
        parts = np.array_split(pixels, shards)
        torch.set_num_threads(1)
        try:
            results = list(self._pool.map(self._forward, parts))
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(results)

    def _forward(self, pixels: Pixels) -> Vectors:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(pixels))
        if self.device != "cpu":
            tensor = tensor.to(self.device, non_blocking=True)
        features: dict[str, Any] = {"pixel_values": tensor, "image_text_info": [0] * len(pixels)}
        try:
            with torch.inference_mode():
                embeddings = self.model.forward(features)["sentence_embedding"]
                result = embeddings.float().cpu().numpy()
        except RuntimeError as exc:  # torch reports shape, device and memory failures as RuntimeError
            raise EncoderError(
                f"torch failed on a batch of {len(pixels)} images on {self.device}: {exc}"
            ) from exc
        return np.asarray(result, dtype=np.float32)


def onnx_providers(device: DeviceRequest) -> tuple[list[str], str]:
    """ONNX Runtime execution providers for ``device``, and the device they amount to.

    ``auto`` takes CUDA when this onnxruntime build has its provider (onnxruntime-gpu), else the CPU;
    ``cuda`` without it is an error that says what to install.
    """
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
    if device == "cuda":
        raise EncoderError(
            f"device: cuda, but this onnxruntime {onnxruntime.__version__} has no CUDA execution provider "
            f"(it has {', '.join(available)}); install onnxruntime-gpu instead of onnxruntime, or use "
            "device: auto (which falls back to the CPU)"
        )
    return ["CPUExecutionProvider"], "cpu"


class OnnxBackend:
    """An exported model run by ONNX Runtime (``model.onnx``: input ``pixel_values``, output
    ``image_embeds``)."""

    runtime: Runtime = "onnx"

    def __init__(
        self, path: Path, *, precision: Precision, device: DeviceRequest = "auto", threads: int | None = None
    ) -> None:
        import onnxruntime

        self.precision = precision
        self.path = path
        providers, self.device = onnx_providers(device)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        # Idle workers sleep instead of spinning: decode threads need the cores between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:
            raise EncoderError(f"ONNX Runtime cannot load {path}: {exc}") from exc

    def run(self, pixels: Pixels) -> Vectors:
        try:
            outputs = self.session.run([ONNX_OUTPUT], {ONNX_INPUT: pixels})
        except Exception as exc:
            raise EncoderError(f"ONNX Runtime failed on a batch of {len(pixels)} images: {exc}") from exc
        return np.asarray(outputs[0], dtype=np.float32)


class OpenVinoBackend:
    """An OpenVINO IR (``model.xml`` + ``model.bin``) compiled for the CPU, fp32 inference precision."""

    runtime: Runtime = "openvino"
    device = "cpu"

    def __init__(self, path: Path, *, precision: Precision, threads: int | None = None) -> None:
        import openvino

        self.precision = precision
        self.path = path
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = openvino.Core().compile_model(str(path), "CPU", config)
        except RuntimeError as exc:  # OpenVINO reports every load failure as RuntimeError
            raise EncoderError(f"OpenVINO cannot compile {path} for the CPU: {exc}") from exc
        self._request = self.compiled.create_infer_request()

    def run(self, pixels: Pixels) -> Vectors:
        try:
            result = self._request.infer({0: pixels})
        except RuntimeError as exc:
            raise EncoderError(f"OpenVINO failed on a batch of {len(pixels)} images: {exc}") from exc
        return np.array(result[self.compiled.output(0)], dtype=np.float32)
