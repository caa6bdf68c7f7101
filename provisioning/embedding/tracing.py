"""Tracing text models to TorchScript with eland, cached by a fingerprint of everything that matters.

Tracing a real model takes minutes; uploading it, more. The fingerprint (source content or hub
revision, task type, input length, quantization, prefixes, and the eland/torch/transformers
versions) goes into the uploaded model's metadata, so ``apply`` can tell an uploaded model is
current without tracing anything, and the local cache means a second upload does not re-trace.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from provisioning.embedding.hub import resolve_source
from provisioning.errors import ProvisionError
from provisioning.json_types import JsonObject, to_json_object
from provisioning.stackfile.schema import ModelSpec

log = logging.getLogger("provisioning.tracing")

# Counted so tests and reports can prove that a converged apply traced nothing.
counters: Counter[str] = Counter()

# The libtorch each Elasticsearch release runs TorchScript with (minor versions). A model traced by
# a newer torch may use operators an older libtorch cannot load. From elastic/ml-cpp and eland:
# 8.0 1.9 (ml-cpp#2237), 8.3 1.11 (eland#474), 8.7 1.13.1 (eland#522), 8.13 2.1.2 (eland#669),
# 8.15 2.3.1, 8.18/9.0 2.5.1 (ml-cpp#2799, eland#785), 2.7.1 from 9.3 (ml-cpp#2863, #2882).
ES_LIBTORCH: list[tuple[tuple[int, int], tuple[int, int]]] = [
    ((8, 0), (1, 9)),
    ((8, 3), (1, 11)),
    ((8, 7), (1, 13)),
    ((8, 13), (2, 1)),
    ((8, 15), (2, 3)),
    ((8, 18), (2, 5)),
    ((9, 3), (2, 7)),
]


class TracingError(ProvisionError):
    """eland could not trace the model; the message says which model and why."""


def _version(package: str) -> str:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return "absent"


def toolchain() -> dict[str, str]:
    return {
        "eland": _version("eland"),
        "torch": _version("torch").split("+")[0],
        "transformers": _version("transformers"),
        "sentence_transformers": _version("sentence-transformers"),
    }


def libtorch_for(es_version: tuple[int, int, int]) -> tuple[int, int] | None:
    found = None
    for since, torch_version in ES_LIBTORCH:
        if es_version[:2] >= since:
            found = torch_version
    return found


def torch_warning(es_version: tuple[int, int, int], torch_version: str) -> str | None:
    """A warning when the tracing torch is newer than the target cluster's libtorch."""
    target = libtorch_for(es_version)
    if target is None:
        return None
    parts = tuple(int(p) for p in torch_version.split(".")[:2] if p.isdigit())
    if len(parts) == 2 and parts > target:
        return (
            f"the model is traced with torch {torch_version}, newer than the libtorch {target[0]}.{target[1]} of "
            f"Elasticsearch {'.'.join(map(str, es_version))}; if the deployment fails to load, trace with "
            f"torch {target[0]}.{target[1]}"
        )
    return None


def dir_digest(path: Path) -> str:
    """SHA-256 (hex) of every file under ``path`` (relative names and contents, sorted; ``.cache`` left out)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    """Everything that determines the traced artifact, and its hash."""

    facts: JsonObject

    @property
    def digest(self) -> str:
        text = json.dumps(self.facts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def toolchain(self) -> dict[str, str]:
        """The library versions the model was (or will be) traced with."""
        found = self.facts.get("toolchain")
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def fingerprint(model: ModelSpec, base_dir: Path) -> Fingerprint:
    if model.source.path is not None:
        path = Path(model.source.path).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_dir():
            raise TracingError(f"model directory not found: {path}")
        source: JsonObject = {"path_sha256": dir_digest(path)}
    else:
        source = {"hub": model.source.hub, "revision": model.source.revision or "main"}
    versions: JsonObject = dict(toolchain())
    facts: JsonObject = {
        "source": source,
        "task_type": model.task_type,
        "max_model_input_length": model.max_model_input_length,
        "quantize": model.quantize,
        "ingest_prefix": model.ingest_prefix,
        "search_prefix": model.search_prefix,
        "toolchain": versions,
    }
    return Fingerprint(facts)


@dataclass(frozen=True)
class TracedModel:
    """A traced model on disk, ready to upload."""

    directory: Path
    definition: Path
    vocabulary: Path
    config: JsonObject
    fingerprint: Fingerprint

    @property
    def definition_size(self) -> int:
        return self.definition.stat().st_size


def cache_root() -> Path:
    configured = os.environ.get("PROVISION_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "provision"


def real_memory_bytes(location: Path | str) -> int:
    """Bytes of the model's parameters and buffers: what a deployment holds per copy.

    eland measures its tracing wrapper, which with sentence-transformers >= 5.4 holds the
    transformer twice and so records twice the size; the traced TorchScript inlines its weights
    as constants, so it cannot be measured either. The source model, loaded on its own, can.
    """
    import torch

    local = Path(location)
    if (local / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        model: torch.nn.Module = SentenceTransformer(str(local), device="cpu")
    else:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(location))
    params = sum(p.nelement() * p.element_size() for p in model.parameters())
    buffers = sum(b.nelement() * b.element_size() for b in model.buffers())
    return int(params + buffers)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[Path]:
    """Send file descriptor 2 to a file while eland traces (or an exporter converts).

    eland profiles the model with torch.profiler, whose native code prints profiler start/stop
    lines straight to fd 2, and transformers warns about tracing; none of it is for the user.
    The captured text is kept so a failure can show it.
    """
    import warnings

    capture = Path(tempfile.mkstemp(prefix="trace-", suffix=".log")[1])
    saved = os.dup(2)
    try:
        with capture.open("wb") as sink, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sys.stderr.flush()
            os.dup2(sink.fileno(), 2)
            try:
                yield capture
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class Tracer:
    """Traces models into a cache directory keyed by fingerprint."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()

    def cached(self, print_: Fingerprint) -> TracedModel | None:
        directory = self.root / "traced" / print_.digest
        manifest = directory / "provision.json"
        if not manifest.is_file():
            return None
        data = json.loads(manifest.read_text())
        return TracedModel(
            directory,
            directory / data["definition"],
            directory / "vocabulary.json",
            to_json_object(data["config"]),
            Fingerprint(to_json_object(data["fingerprint"])),
        )

    def trace(
        self, name: str, model: ModelSpec, base_dir: Path, es_version: tuple[int, int, int]
    ) -> TracedModel:
        """The traced model for ``model``, from the cache when its fingerprint is there."""
        print_ = fingerprint(model, base_dir)
        found = self.cached(print_)
        if found is not None:
            counters["cache_hits"] += 1
            log.info("models.%s: traced model found in cache (%s)", name, found.directory)
            return found
        location = resolve_source(model.source, base_dir, what=f"models.{name}")
        counters["traces"] += 1
        log.info("models.%s: tracing %s with eland (task %s)", name, location, model.task_type)
        from eland.ml.pytorch.transformers import TransformerModel

        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="trace-", dir=self.root))
        try:
            with quiet_native_stderr() as captured:
                try:
                    traced = TransformerModel(
                        model_id=str(location),
                        task_type=model.task_type,
                        es_version=es_version,
                        quantize=model.quantize,
                        ingest_prefix=model.ingest_prefix,
                        search_prefix=model.search_prefix,
                        max_model_input_size=model.max_model_input_length,
                    )
                    definition, config, _vocabulary = traced.save(str(staging))
                    size = real_memory_bytes(location)
                except (OSError, TypeError, ValueError, KeyError, RuntimeError) as exc:
                    detail = captured.read_text(errors="replace").strip()[-2000:]
                    captured.unlink(missing_ok=True)
                    raise TracingError(
                        f"models.{name}: eland cannot trace {location}: {exc}"
                        + (f"\n{detail}" if detail else "")
                    ) from exc
            captured.unlink(missing_ok=True)
            config_dict: dict[str, Any] = config.to_dict()
            meta = dict(config_dict.get("metadata") or {})
            meta["per_deployment_memory_bytes"] = size
            config_dict["metadata"] = meta
            manifest = {
                "definition": Path(definition).name,
                "config": config_dict,
                "fingerprint": print_.facts,
            }
            (staging / "provision.json").write_text(json.dumps(manifest, indent=2))
            target = self.root / "traced" / print_.digest
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        result = self.cached(print_)
        assert result is not None
        return result
