"""The identity of an image encoder: what its vectors are, and what built its converted model.

An :class:`EncoderFingerprint` is a small frozen value with two hashes:

- :attr:`~EncoderFingerprint.vectors_id` names *the vectors*: the model source (content hash of the
  directory, or hub id and revision), the runtime, the precision and whether vectors are scaled to
  unit length. Two encoders with the same ``vectors_id`` produce interchangeable vectors; two with
  different ones must never fill the same vector field (ingest records it in the index's mapping
  ``_meta`` and refuses a mix). Library versions are left out on purpose: a patch release of ONNX
  Runtime moves vectors by ~1e-6, not enough to split an index.
- :attr:`~EncoderFingerprint.digest` names *the artifact*: everything above plus the versions of the
  libraries that export, quantise and run it, and :data:`RECIPE` (bumped whenever the way this code
  converts a model changes). Converted models and quality-gate verdicts are cached under it, exactly
  as traced text models are cached under theirs (:mod:`provisioning.embedding.tracing`).

It serialises to a flat JSON object (:meth:`EncoderFingerprint.to_json`, read back by
:meth:`EncoderFingerprint.from_json`) so that other writers of vectors (Parquet exports, other engines)
can record and compare it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import get_args

from provisioning.embedding.tracing import dir_digest
from provisioning.json_types import JsonObject, JsonValue
from provisioning.stackfile.schema import Precision, Runtime

RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

# Bumped whenever the export, quantisation or conversion recipe changes, so cached artifacts built
# the old way are rebuilt (the digest changes) while vectors_id, which the recipe does not define,
# stays.
RECIPE = 1

# The distributions whose versions go into the artifact digest, per runtime and precision.
_LIBRARIES: dict[tuple[Runtime, Precision], tuple[str, ...]] = {
    ("torch", "fp32"): ("torch", "transformers", "sentence-transformers"),
    ("onnx", "fp32"): ("torch", "transformers", "sentence-transformers", "onnxscript", "onnx", "onnxruntime"),
    ("onnx", "int8"): ("torch", "transformers", "sentence-transformers", "onnxscript", "onnx", "onnxruntime"),
    ("openvino", "fp32"): (
        "torch",
        "transformers",
        "sentence-transformers",
        "onnxscript",
        "onnx",
        "openvino",
    ),
    ("openvino", "int8"): (
        "torch",
        "transformers",
        "sentence-transformers",
        "onnxscript",
        "onnx",
        "openvino",
        "nncf",
    ),
}


def library_versions(runtime: Runtime, precision: Precision) -> tuple[tuple[str, str], ...]:
    """(distribution, version) of each library that builds or runs this runtime's model ("absent" if
    not installed; local build tags such as ``+cpu`` dropped)."""
    out = []
    for name in _LIBRARIES[(runtime, precision)]:
        try:
            version = importlib_metadata.version(name).split("+")[0]
        except importlib_metadata.PackageNotFoundError:
            version = "absent"
        out.append((name, version))
    return tuple(out)


_digest_lock = threading.Lock()
_digests: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def source_digest(directory: Path) -> str:
    """``sha256:<hex>`` of a model directory's files, memoised on their names, sizes and mtimes.

    Hashing a 600 MB model costs about a second; a process that loads the same encoder twice (ingest,
    then a smoke test) pays once.
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file() and ".cache" not in p.parts)
    stats = tuple(
        (p.relative_to(directory).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    key = (str(directory.resolve()), stats)
    with _digest_lock:
        found = _digests.get(key)
    if found is None:
        found = "sha256:" + dir_digest(directory)
        with _digest_lock:
            _digests[key] = found
    return found


def hub_source(repo_id: str, revision: str | None) -> str:
    """The source string of a hub model: ``hub:<repo>@<revision>`` (``main`` when not pinned)."""
    return f"hub:{repo_id}@{revision or 'main'}"


def _hash(facts: JsonObject, length: int) -> str:
    text = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class EncoderFingerprint:
    """What identifies an image encoder's vectors (:attr:`vectors_id`) and its artifact (:attr:`digest`).

    ``source`` is ``sha256:<hex>`` of the model directory or ``hub:<repo>@<revision>``;
    ``toolchain`` holds (distribution, version) pairs of the libraries that build and run it.
    """

    source: str
    runtime: Runtime
    precision: Precision
    normalize: bool
    toolchain: tuple[tuple[str, str], ...] = ()
    recipe: int = RECIPE

    @classmethod
    def of(cls, source: str, runtime: Runtime, precision: Precision, normalize: bool) -> EncoderFingerprint:
        """The fingerprint of an encoder built here, now (with the installed library versions)."""
        return cls(source, runtime, precision, normalize, library_versions(runtime, precision))

    @property
    def vectors_id(self) -> str:
        """16 hex digits naming the vectors: source, runtime, precision, normalisation."""
        facts: JsonObject = {
            "source": self.source,
            "runtime": self.runtime,
            "precision": self.precision,
            "normalize": self.normalize,
        }
        return _hash(facts, 16)

    @property
    def digest(self) -> str:
        """32 hex digits naming the artifact: :attr:`vectors_id`'s facts plus toolchain and recipe."""
        toolchain: JsonObject = dict(self.toolchain)
        facts: JsonObject = {"vectors": self.vectors_id, "toolchain": toolchain, "recipe": self.recipe}
        return _hash(facts, 32)

    def describe(self) -> str:
        """For messages: ``onnx int8 of sha256:1a2b3c4d5e6f (vectors 0123456789abcdef)``."""
        source = self.source
        if source.startswith("sha256:"):
            source = source[: len("sha256:") + 12]
        unit = ", normalised" if self.normalize else ""
        return f"{self.runtime} {self.precision} of {source}{unit} (vectors {self.vectors_id})"

    def to_json(self) -> JsonObject:
        """A flat JSON object, with both hashes for readers that only compare them."""
        toolchain: JsonObject = dict(self.toolchain)
        return {
            "vectors_id": self.vectors_id,
            "digest": self.digest,
            "source": self.source,
            "runtime": self.runtime,
            "precision": self.precision,
            "normalize": self.normalize,
            "toolchain": toolchain,
            "recipe": self.recipe,
        }

    @classmethod
    def from_json(cls, data: JsonValue) -> EncoderFingerprint:
        """The fingerprint :meth:`to_json` wrote; ValueError names what is missing or malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"an encoder fingerprint is a JSON object, got {type(data).__name__}")
        source, runtime, precision = data.get("source"), data.get("runtime"), data.get("precision")
        normalize, toolchain, recipe = data.get("normalize"), data.get("toolchain", {}), data.get("recipe", 0)
        if not isinstance(source, str) or not source:
            raise ValueError("encoder fingerprint: 'source' must be a non-empty string")
        if runtime not in RUNTIMES:
            raise ValueError(f"encoder fingerprint: 'runtime' must be one of {', '.join(RUNTIMES)}")
        if precision not in PRECISIONS:
            raise ValueError(f"encoder fingerprint: 'precision' must be one of {', '.join(PRECISIONS)}")
        if not isinstance(normalize, bool):
            raise ValueError("encoder fingerprint: 'normalize' must be true or false")
        if not isinstance(toolchain, dict) or not all(isinstance(v, str) for v in toolchain.values()):
            raise ValueError("encoder fingerprint: 'toolchain' must map library names to versions")
        if not isinstance(recipe, int) or isinstance(recipe, bool):
            raise ValueError("encoder fingerprint: 'recipe' must be an integer")
        versions = tuple((str(k), str(v)) for k, v in toolchain.items())
        made = cls(source, runtime, precision, normalize, versions, recipe)
        recorded = data.get("vectors_id")
        if recorded is not None and recorded != made.vectors_id:
            raise ValueError(
                f"encoder fingerprint: recorded vectors_id {recorded} does not match its facts "
                f"({made.vectors_id}); the record was edited or written by an incompatible version"
            )
        return made
