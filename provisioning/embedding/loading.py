"""Loading image encoders from a stack: local directories, hub sources (fail fast when the hub is
unreachable), converted runtimes (ONNX Runtime, OpenVINO) from the conversion cache, behind the
quality gate."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioning.embedding.calibration import CalibrationSet
from provisioning.embedding.encoders import Encoder, resolve_device
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
from provisioning.embedding.preprocessing import ImagePreprocessing
from provisioning.embedding.runtimes import ImageBackend, OnnxBackend, OpenVinoBackend, TorchBackend
from provisioning.stackfile.schema import EncoderSpec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from provisioning.embedding.conversion import EncoderCache
    from provisioning.stackfile.stack import Stack

log = logging.getLogger(__name__)


# -- loading --------------------------------------------------------------------------------------


def load_encoder(
    name: str,
    spec: EncoderSpec,
    base_dir: Path,
    *,
    batch_size: int | None = None,
    hub_timeout: float = 3.0,
    calibration: CalibrationSet | Callable[[], CalibrationSet] | None = None,
    cache: EncoderCache | None = None,
) -> Encoder:
    """Load the encoder ``name`` declared by ``spec``; relative paths are relative to ``base_dir``.

    ``batch_size`` overrides the spec's (an ingest job may set its own). ``hub_timeout`` bounds the
    check that the hub answers before a hub source is fetched. For ``runtime: onnx | openvino`` the
    converted model comes from ``cache`` (default: the user's cache folder) or is converted into it,
    and the quality gate measures it on ``calibration`` (default: generated images; a callable is
    called only when the gate runs) unless its verdict is cached. Raises EncoderError (HubUnavailableError, ConversionError, QualityGateError).
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


def load_stack_encoder(
    stack: Stack, name: str, *, batch_size: int | None = None, threads: int | None = None
) -> Encoder:
    """The stack's encoder ``name``, gated (when converted) on the stack's own images; ``threads``
    applies where the spec sets none.

    See :func:`load_encoder`; the quality gate's calibration images come from
    :func:`~provisioning.embedding.calibration.stack_calibration`, found only when the gate runs.
    KeyError if it is not declared.
    """
    from provisioning.embedding.calibration import stack_calibration

    spec = stack.spec.encoders[name]
    if spec.threads is None and threads is not None:
        spec = spec.model_copy(update={"threads": threads})
    return load_encoder(
        name,
        spec,
        stack.base_dir,
        batch_size=batch_size,
        calibration=lambda: stack_calibration(stack, name),
    )


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
    calibration: CalibrationSet | Callable[[], CalibrationSet] | None,
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
        directory = hub_directory(name, repo_id, spec.source.revision, hub_timeout)
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
    preprocessing, processor = image_preprocessing(name, directory)
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
        chosen = calibration() if callable(calibration) else calibration
        pixels, description = quality_gate.calibration_pixels(
            chosen or CalibrationSet(description="generated images", wanted=spec.calibration.images),
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


def image_preprocessing(name: str, directory: Path) -> tuple[ImagePreprocessing | None, Any]:
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


def hub_directory(name: str, repo_id: str, revision: str | None, timeout: float) -> Path:
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
