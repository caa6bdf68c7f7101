"""Converting a CLIP image tower for ONNX Runtime or OpenVINO, cached by its fingerprint.

Every converted model starts from the same place: the sentence-transformers (or Hugging Face) CLIP
model the torch encoder runs, exported by PyTorch's own ONNX exporter (``torch.onnx.export`` with
``dynamo=True``, the maintained path, through onnxscript) as one graph from ``pixel_values``
(n, 3, H, W) float32, dynamic batch, to ``image_embeds`` (n, dims): the vision transformer and its
projection, exactly what the CLIP module computes for images. Then, per runtime and precision:

    onnx fp32       the exported graph
    onnx int8       ONNX Runtime's dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``):
                    int8 weights per output channel, activations quantised per batch at run time;
                    MatMul/Gemm only (the patch-embedding convolution stays fp32)
    openvino fp32   OpenVINO's converter on the exported graph (``openvino.convert_model``), saved as
                    IR without fp16 compression
    openvino int8   NNCF post-training quantisation of that IR (``nncf.quantize``, transformer preset
                    with SmoothQuant; patch embedding and output projection left in fp32), calibrated
                    on generated images (:mod:`.calibration`)

A sentence-transformers pipeline may end with a ``Normalize`` module (the encoder normalises, the
same way for every runtime); any other module after the CLIP module cannot be converted.

Conversion takes from seconds (tiny models) to a minute or two (ViT-B/32 int8), so its result is
cached under ``$PROVISION_CACHE_DIR/encoders/<fingerprint digest>/`` (default
``~/.cache/provision``), as traced text models are: a second load with the same fingerprint (same
source content, runtime, precision, library versions, recipe) reuses it and converts nothing, which
:data:`counters` proves (``conversions``, ``cache_hits``). The quality gate's verdict is stored beside
the model (``gate.json``) and counted as well (``gate_runs``, ``gate_cache_hits``).

Exporters print progress and warnings on stdout and stderr; both are captured while converting and
shown only in the error when a conversion fails (``provision ... --output json`` must keep stdout
for its one JSON document).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from provisioning.embedding.errors import ConversionError
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.embedding.quality_gate import GateVerdict
from provisioning.embedding.runtimes import ONNX_INPUT, ONNX_OUTPUT
from provisioning.embedding.tracing import cache_root
from provisioning.json_types import to_json_object

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Counted so tests and reports can prove that a load with a cached artifact converted nothing.
counters: Counter[str] = Counter()

MANIFEST = "provision.json"
VERDICT = "gate.json"
INT8_CALIBRATION_IMAGES = 48  # generated images NNCF measures activation ranges on (openvino int8)
_MAX_BATCH = 4096  # the exported graph's largest batch (any batch_size the schema allows)


@dataclass(frozen=True)
class ConvertedModel:
    """A converted model on disk: ``model_file`` (``model.onnx`` or ``model.xml``) in ``directory``."""

    directory: Path
    model_file: Path
    fingerprint: EncoderFingerprint
    build_s: float  # seconds the conversion took when it was built


@contextlib.contextmanager
def silenced() -> Iterator[Path]:
    """File descriptors 1 and 2 (and Python's warnings) go to a file for the duration; its path is
    yielded so that a failure can show what the exporter said."""
    capture = Path(tempfile.mkstemp(prefix="convert-", suffix=".log")[1])
    saved = (os.dup(1), os.dup(2))
    quiet = ("torch.onnx", "torch.export", "onnxscript", "nncf", "root", "onnxruntime")
    levels = {name: logging.getLogger(None if name == "root" else name).level for name in quiet}
    try:
        with capture.open("wb") as sink, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in quiet:
                logging.getLogger(None if name == "root" else name).setLevel(logging.ERROR)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield capture
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)
        for name, level in levels.items():
            logging.getLogger(None if name == "root" else name).setLevel(level)


def _clip_parts(model: SentenceTransformer) -> Any:
    """The Hugging Face CLIPModel inside a sentence-transformers pipeline that can be converted."""
    from sentence_transformers.models import CLIPModel, Normalize

    modules = list(model)
    if not modules or not isinstance(modules[0], CLIPModel):
        first = type(modules[0]).__name__ if modules else "nothing"
        raise ConversionError(f"only CLIP models can be converted; this one starts with {first}")
    extra = [type(m).__name__ for m in modules[1:] if not isinstance(m, Normalize)]
    if extra:
        raise ConversionError(
            f"the model's pipeline has {', '.join(extra)} after its CLIP module; only a Normalize "
            "module can follow it in a converted encoder (use runtime: torch)"
        )
    return modules[0].model


def _image_tower(clip: Any) -> Any:
    import torch

    class ImageTower(torch.nn.Module):
        """pixel_values -> image_embeds: what the CLIP module computes for images."""

        def __init__(self) -> None:
            super().__init__()
            self.vision_model = clip.vision_model
            self.visual_projection = clip.visual_projection

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            pooled = self.vision_model(pixel_values=pixel_values)[1]
            return self.visual_projection(pooled)  # type: ignore[no-any-return]

    return ImageTower().eval()


def export_onnx(model: SentenceTransformer, target: Path) -> Path:
    """The model's image tower as one ONNX file (weights inside), dynamic batch; returns ``target``."""
    import torch

    clip = _clip_parts(model)
    size = int(clip.config.vision_config.image_size)
    tower = _image_tower(clip).to("cpu").float()
    example = torch.zeros(2, 3, size, size, dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            tower,
            (example,),
            str(target),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes={"pixel_values": {0: batch}},
            dynamo=True,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    return target


def quantize_onnx_int8(source: Path, target: Path) -> Path:
    """ONNX Runtime dynamic int8 quantisation of ``source`` into ``target`` (MatMul/Gemm weights per
    channel, signed int8)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
    return target


def int8_calibration_batches(model: SentenceTransformer, count: int = INT8_CALIBRATION_IMAGES) -> list[Any]:
    """Generated images prepared by the model's own processor, one (1, 3, H, W) array each."""
    from provisioning.embedding.calibration import generated_images

    clip_module: Any = model[0]
    processor = clip_module.processor.image_processor
    batches = []
    for image in generated_images(count, seed=0):
        pixels = processor(images=image, return_tensors="np")["pixel_values"]
        batches.append(np.ascontiguousarray(pixels, dtype=np.float32))
    return batches


def convert_openvino(source: Path, target: Path, *, int8: bool, model: SentenceTransformer) -> Path:
    """OpenVINO IR (``target`` = ``model.xml``, weights in ``model.bin``) from an exported ONNX graph;
    with ``int8``, NNCF post-training quantisation on generated calibration images."""
    import openvino

    converted = openvino.convert_model(str(source))
    if int8:
        import nncf

        dataset = nncf.Dataset(int8_calibration_batches(model))
        # The patch embedding and the output projection stay fp32: together a few per cent of the
        # arithmetic, and where int8 costs the most cosine on small models.
        projection = converted.output(0).get_node().input_value(0).get_node().get_friendly_name()
        converted = nncf.quantize(
            converted,
            dataset,
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=INT8_CALIBRATION_IMAGES,
            ignored_scope=nncf.IgnoredScope(types=["Convolution"], names=[projection], validate=False),
        )
    openvino.save_model(converted, str(target), compress_to_fp16=False)
    return target


class EncoderCache:
    """Converted encoders and their gate verdicts, one folder per fingerprint digest."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_root()) / "encoders"

    def folder(self, fingerprint: EncoderFingerprint) -> Path:
        return self.root / fingerprint.digest

    def cached(self, fingerprint: EncoderFingerprint) -> ConvertedModel | None:
        """The converted model of ``fingerprint`` if it is in the cache (complete), else None."""
        directory = self.folder(fingerprint)
        manifest = directory / MANIFEST
        if not manifest.is_file():
            return None
        try:
            data = to_json_object(json.loads(manifest.read_text(encoding="utf-8")))
            model_file = directory / str(data["model_file"])
            build_s = data.get("build_s", 0.0)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring the unreadable converted model in %s: %s", directory, exc)
            return None
        if not model_file.is_file():
            return None
        return ConvertedModel(
            directory, model_file, fingerprint, float(build_s) if isinstance(build_s, int | float) else 0.0
        )

    def get_or_convert(
        self, name: str, fingerprint: EncoderFingerprint, load: Callable[[], SentenceTransformer]
    ) -> ConvertedModel:
        """The cached conversion of ``fingerprint``, or a new one made from ``load()`` (the source
        model, loaded by torch on the CPU only on a cache miss) and cached. Raises ConversionError
        naming the encoder and the step that failed."""
        found = self.cached(fingerprint)
        if found is not None:
            counters["cache_hits"] += 1
            return found
        return self.convert(name, fingerprint, load())

    def convert(
        self, name: str, fingerprint: EncoderFingerprint, model: SentenceTransformer
    ) -> ConvertedModel:
        """Convert ``model`` for ``fingerprint``'s runtime and precision into the cache (always)."""
        counters["conversions"] += 1
        what = f"{fingerprint.runtime} {fingerprint.precision}"
        log.info(
            "encoders.%s: converting to %s (once; cached by fingerprint %s)", name, what, fingerprint.digest
        )
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="convert-", dir=self.root))
        started = time.perf_counter()
        step = "export to ONNX"
        try:
            with silenced() as captured:
                try:
                    exported = export_onnx(model, staging / "export.onnx")
                    if fingerprint.runtime == "onnx" and fingerprint.precision == "fp32":
                        model_file = exported.rename(staging / "model.onnx")
                    elif fingerprint.runtime == "onnx":
                        step = "quantise with ONNX Runtime"
                        model_file = quantize_onnx_int8(exported, staging / "model.onnx")
                    else:
                        step = "convert with OpenVINO" + (
                            " and quantise with NNCF" if fingerprint.precision == "int8" else ""
                        )
                        model_file = convert_openvino(
                            exported, staging / "model.xml", int8=fingerprint.precision == "int8", model=model
                        )
                except Exception as exc:
                    detail = captured.read_text(errors="replace").strip()[-2000:]
                    raise ConversionError(
                        f"encoders.{name}: cannot {step} for runtime {what}: {type(exc).__name__}: {exc}"
                        + (f"\n{detail}" if detail else "")
                        + f"\nuse runtime: torch, or report the model and versions {dict(fingerprint.toolchain)}"
                    ) from exc
            captured.unlink(missing_ok=True)
            for leftover in staging.iterdir():
                if not leftover.name.startswith("model."):
                    leftover.unlink()
            manifest = {
                "model_file": model_file.name,
                "fingerprint": fingerprint.to_json(),
                "build_s": round(time.perf_counter() - started, 3),
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            target = self.folder(fingerprint)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        result = self.cached(fingerprint)
        if result is None:  # pragma: no cover - the folder was just written
            raise ConversionError(
                f"encoders.{name}: the converted model vanished from {self.folder(fingerprint)}"
            )
        return result

    # -- the quality gate's verdicts ---------------------------------------------------------------

    def verdict(self, fingerprint: EncoderFingerprint) -> GateVerdict | None:
        """The stored verdict for ``fingerprint``'s artifact, or None."""
        path = self.folder(fingerprint) / VERDICT
        if not path.is_file():
            return None
        try:
            verdict = GateVerdict.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable gate verdict %s: %s", path, exc)
            return None
        return verdict if verdict.digest == fingerprint.digest else None

    def store_verdict(self, fingerprint: EncoderFingerprint, verdict: GateVerdict) -> None:
        folder = self.folder(fingerprint)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / (VERDICT + ".part")
        partial.write_text(json.dumps(verdict.to_json(), indent=2), encoding="utf-8")
        partial.replace(folder / VERDICT)

    def forget_verdict(self, fingerprint: EncoderFingerprint) -> None:
        """Drop the stored verdict (the next load gates again)."""
        (self.folder(fingerprint) / VERDICT).unlink(missing_ok=True)
