"""The ML part of the sandbox's state: trained models, aliases, deployments, inference endpoints.

Everything here is plain data (dicts, lists, bytes, numbers). For ``--data DIR`` the part stores
itself through the persistence protocol (:meth:`MlState.snapshot_writer` and the loader registered
below): ``ml.json`` holds configs, vocabularies, aliases, deployments and endpoints; each definition
part is a content-addressed file under ``blobs/`` that is hard-linked from the previous snapshot when
unchanged, so a snapshot after an unrelated write does not rewrite model bytes. It also pickles
(``__getstate__``) and converts to/from JSON (:meth:`MlState.to_json`) for other uses.
What cannot be persisted, loaded TorchScript modules, tokenizers and inference caches, lives in
:class:`Runtime`, which is left out and rebuilt lazily on the first inference after a restart.
Deployments restart on load (they go through ``starting`` again, with fresh counters), as
Elasticsearch restarts model processes when a node restarts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from es_sandbox import persistence
from es_sandbox.state import SandboxState

PART = "ml"


@dataclass
class TrainedModel:
    """A model config plus its uploaded definition parts and vocabulary."""

    model_id: str
    config: dict[str, Any]
    parts: dict[int, bytes] = field(default_factory=dict)
    total_definition_length: int | None = None
    total_parts: int | None = None
    vocabulary: dict[str, Any] | None = None
    inline_definition: dict[str, Any] | None = None
    download_pending: bool = False  # a packaged (".xxx") model the offline sandbox can never download
    part_digests: dict[int, str] = field(default_factory=dict)  # sha256 per part, for snapshots

    def add_part(self, index: int, data: bytes) -> None:
        self.parts[index] = data
        self.part_digests[index] = _digest(data)

    @property
    def model_type(self) -> str | None:
        value = self.config.get("model_type")
        return str(value) if value is not None else None

    def definition_length(self) -> int:
        return sum(len(p) for p in self.parts.values())

    def fully_defined(self) -> bool:
        if self.inline_definition is not None:
            return True
        if not self.parts or self.total_parts is None or self.total_definition_length is None:
            return False
        return (
            len(self.parts) == self.total_parts and self.definition_length() == self.total_definition_length
        )

    def definition(self) -> bytes:
        return b"".join(self.parts[i] for i in sorted(self.parts))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("part_digests")
        out["parts"] = {str(k): base64.b64encode(v).decode("ascii") for k, v in self.parts.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainedModel:
        data = dict(data)
        parts = data.pop("parts", {})
        model = cls(**data)
        for index, encoded in parts.items():
            model.add_part(int(index), base64.b64decode(encoded))
        return model


@dataclass
class Deployment:
    """A started model deployment; its state is derived from timestamps, not from a thread."""

    deployment_id: str
    model_id: str
    model_bytes: int
    number_of_allocations: int
    threads_per_allocation: int
    queue_capacity: int
    priority: str
    cache_size: str  # getStringRep of the cache size; the model size when not given
    cache_size_bytes: int
    cache_size_given: bool
    per_deployment_memory_bytes: int
    per_allocation_memory_bytes: int
    adaptive_allocations: dict[str, Any] | None
    start_time: float  # wall clock, seconds
    started_delay_s: float
    allocation_delay_s: float
    # allocations reached before the latest change of target, and when that change happened
    previous_allocations: int = 0
    changed_at: float | None = None
    inference_endpoint: str | None = None  # the endpoint that started it (stopped with it)
    inference_count: int = 0
    cache_hit_count: int = 0
    error_count: int = 0
    timeout_count: int = 0
    total_inference_ms: float = 0.0
    total_inference_ms_excluding_cache: float = 0.0
    last_access: float | None = None

    # --- state, computed from the clock -------------------------------------------------------
    def started_at(self) -> float:
        return self.start_time + self.started_delay_s

    def current_allocations(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        target = self.number_of_allocations
        if now < self.started_at():
            return 0
        if self.changed_at is None:
            if target <= 1 or now >= self.started_at() + self.allocation_delay_s:
                return target
            return 1
        if now >= self.changed_at + self.allocation_delay_s:
            return target
        return min(self.previous_allocations, target)

    def allocation_state(self, now: float | None = None) -> str:
        """``AllocationStatus.calculateState``: starting, started or fully_allocated."""
        current = self.current_allocations(now)
        if current == 0 and self.number_of_allocations > 0:
            return "starting"
        if current < self.number_of_allocations:
            return "started"
        return "fully_allocated"

    def assignment_state(self, now: float | None = None) -> str:
        return "starting" if self.current_allocations(now) == 0 else "started"

    def reached_at(self, wait_for: str) -> float:
        """When the deployment reaches ``wait_for`` (starting/started/fully_allocated) if nothing changes."""
        if wait_for == "starting":
            return self.start_time
        if wait_for == "started":
            return self.started_at()
        if self.changed_at is not None:
            return max(self.started_at(), self.changed_at + self.allocation_delay_s)
        if self.number_of_allocations <= 1:
            return self.started_at()
        return self.started_at() + self.allocation_delay_s

    def set_allocations(self, count: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.previous_allocations = self.current_allocations(now)
        self.changed_at = now
        self.number_of_allocations = count


@dataclass
class InferenceEndpoint:
    """An ``_inference`` endpoint of service ``elasticsearch``, backed by a deployment."""

    inference_id: str
    task_type: str
    service: str
    service_settings: dict[str, Any]
    task_settings: dict[str, Any]
    chunking_settings: dict[str, Any] | None
    deployment_id: str
    owns_deployment: bool  # created the deployment (and stops it when deleted)


@dataclass
class Runtime:
    """Per-process, non-persistent objects: loaded TorchScript modules, tokenizers, caches."""

    modules: dict[str, Any] = field(default_factory=dict)  # deployment id -> loaded module
    tokenizers: dict[str, Any] = field(default_factory=dict)
    caches: dict[str, OrderedDict[str, tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, deployment_id: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(deployment_id, threading.Lock())

    def forget(self, deployment_id: str) -> None:
        with self.guard:
            self.modules.pop(deployment_id, None)
            self.tokenizers.pop(deployment_id, None)
            self.caches.pop(deployment_id, None)
            self.locks.pop(deployment_id, None)


class MlState:
    """Models, aliases, deployments and endpoints; mutate only while holding ``SandboxState.lock``."""

    def __init__(self) -> None:
        self.models: dict[str, TrainedModel] = {}
        self.aliases: dict[str, str] = {}  # alias -> model id
        self.deployments: dict[str, Deployment] = {}
        self.endpoints: dict[str, InferenceEndpoint] = {}
        self.runtime = Runtime()

    # pickling (persistence) keeps the data and drops the runtime
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("runtime", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.runtime = Runtime()

    def snapshot_writer(self) -> Callable[[Path, Path | None], None]:
        """Persistence protocol: capture a view now (under the state lock), write it later."""
        meta = {
            "models": {k: _model_meta(m) for k, m in self.models.items()},
            "aliases": dict(self.aliases),
            "deployments": {k: asdict(d) for k, d in self.deployments.items()},
            "endpoints": {k: asdict(e) for k, e in self.endpoints.items()},
        }
        blobs = {_part_digest(m, i): data for m in self.models.values() for i, data in m.parts.items()}

        def write(directory: Path, previous: Path | None) -> None:
            (directory / "blobs").mkdir(exist_ok=True)
            for digest, data in blobs.items():
                target = directory / "blobs" / digest
                old = previous / "blobs" / digest if previous is not None else None
                if old is not None and old.is_file():
                    persistence.link_or_copy(old, target)
                else:
                    persistence.write_file(target, data)
            persistence.write_file(directory / "ml.json", json.dumps(meta).encode())

        return write

    @classmethod
    def load_snapshot(cls, state: SandboxState, directory: Path) -> MlState:
        """Persistence protocol: rebuild the part; deployments restart from ``starting``."""
        meta = json.loads((directory / "ml.json").read_text())
        out = cls()
        for model_id, data in meta.get("models", {}).items():
            digests = data.pop("part_digests", {})
            model = TrainedModel(**data)
            for index, digest in digests.items():
                model.add_part(int(index), (directory / "blobs" / digest).read_bytes())
            out.models[model_id] = model
        out.aliases = dict(meta.get("aliases", {}))
        now = time.time()
        for deployment_id, data in meta.get("deployments", {}).items():
            deployment = Deployment(**data)
            deployment.start_time = now
            deployment.started_delay_s = state.config.deployment_start_delay_s
            deployment.allocation_delay_s = state.config.allocation_delay_s
            deployment.previous_allocations, deployment.changed_at = 0, None
            deployment.inference_count = deployment.cache_hit_count = 0
            deployment.error_count = deployment.timeout_count = 0
            deployment.total_inference_ms = deployment.total_inference_ms_excluding_cache = 0.0
            deployment.last_access = None
            out.deployments[deployment_id] = deployment
        out.endpoints = {k: InferenceEndpoint(**v) for k, v in meta.get("endpoints", {}).items()}
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (model definitions base64-encoded)."""
        return {
            "models": {k: m.to_json() for k, m in self.models.items()},
            "aliases": dict(self.aliases),
            "deployments": {k: asdict(d) for k, d in self.deployments.items()},
            "endpoints": {k: asdict(e) for k, e in self.endpoints.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MlState:
        out = cls()
        out.models = {k: TrainedModel.from_json(v) for k, v in data.get("models", {}).items()}
        out.aliases = dict(data.get("aliases", {}))
        out.deployments = {k: Deployment(**v) for k, v in data.get("deployments", {}).items()}
        out.endpoints = {k: InferenceEndpoint(**v) for k, v in data.get("endpoints", {}).items()}
        return out

    # lookups ---------------------------------------------------------------------------------
    def resolve_model_id(self, ref: str) -> str:
        """A model id from a model id or a model alias (ids win, as aliases may not equal ids)."""
        if ref in self.models:
            return ref
        return self.aliases.get(ref, ref)

    def deployments_of(self, model_id: str) -> list[Deployment]:
        return [d for d in self.deployments.values() if d.model_id == model_id]

    def aliases_of(self, model_id: str) -> list[str]:
        return sorted(a for a, m in self.aliases.items() if m == model_id)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _part_digest(model: TrainedModel, index: int) -> str:
    digest = model.part_digests.get(index)
    if digest is None:
        digest = model.part_digests[index] = _digest(model.parts[index])
    return digest


def _model_meta(model: TrainedModel) -> dict[str, Any]:
    out = {k: v for k, v in model.__dict__.items() if k not in ("parts", "part_digests")}
    out["part_digests"] = {str(i): _part_digest(model, i) for i in model.parts}
    return json.loads(json.dumps(out))  # type: ignore[no-any-return]


persistence.register_loader(PART, MlState.load_snapshot)


def ml_state(state: SandboxState) -> MlState:
    """The ML part of a sandbox, created on first use."""
    part: MlState = state.part(PART, MlState)
    return part
